"""Third-party chatter that tells a user nothing, silenced where it starts (loading only, never errors).

- diffusers ≥ 0.36 renamed ``torch_dtype`` to ``dtype`` and warns on the old name; older releases know
  only the old name, so the keyword follows the installed version;
- diffusers warns "modules … should be kept in float32: []" on every cast, even with an empty list;
- per-component progress bars of diffusers/transformers while loading a few files.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def dtype_keyword(dtype: torch.dtype) -> dict[str, torch.dtype]:
    from diffusers.utils import deprecation_utils

    return {"dtype": dtype} if hasattr(deprecation_utils, "_resolve_dtype") else {"torch_dtype": dtype}


class _EmptyFp32ListFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


_FILTER = _EmptyFp32ListFilter()


@contextmanager
def quiet_loading() -> Iterator[None]:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    logger = logging.getLogger("diffusers.models.modeling_utils")
    logger.addFilter(_FILTER)
    diffusers_bars = diffusers_logging.is_progress_bar_enabled()
    transformers_bars = transformers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        logger.removeFilter(_FILTER)
        if diffusers_bars:
            diffusers_logging.enable_progress_bar()
        if transformers_bars:
            transformers_logging.enable_progress_bar()
