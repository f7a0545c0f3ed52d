"""TF32 tensor-core arithmetic for fp32 UNet calls on CUDA, switched on only inside a block."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def tf32(enabled: bool):
    """fp32 matmuls and convolutions through TF32 tensor cores (inputs rounded to a 10-bit mantissa, fp32
    accumulation) inside the block; the previous settings afterwards. No effect off CUDA."""
    if not enabled:
        yield
        return
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if hasattr(matmul, "fp32_precision"):  # torch ≥ 2.9; mixing in the legacy allow_tf32 flags is an error there
        before = matmul.fp32_precision, conv.fp32_precision
        matmul.fp32_precision = conv.fp32_precision = "tf32"
        try:
            yield
        finally:
            matmul.fp32_precision, conv.fp32_precision = before
    else:
        before = matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
