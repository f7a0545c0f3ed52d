"""A generator's training checkpoint as one safetensors file, written atomically (issue 14).

Tensors: θ (``generator.*``), every optimiser's per-parameter state (``optimizer.<name>.<index>.<key>``), the
method's auxiliary parameters (``aux.*``, e.g. SMS's fake LoRA) and the global RNG state (``rng.torch``).
Everything else — step, optimiser hyper-parameters (param_groups), LR-scheduler state, the run's config —
is JSON in the file's metadata under ``sms``. Restoring all of it makes a resumed run continue bit for bit.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from sms.outputs import atomic_write_bytes

METADATA_KEY = "sms"


def optimizer_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """(per-parameter state tensors, JSON of the rest): torch's state_dict split for safetensors."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{name}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                      meta: dict) -> None:
    prefix = f"optimizer.{name}."
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, entry = key[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[entry] = value
    for key, value in meta["scalars"].items():
        index, entry = key.split(".", 1)
        state.setdefault(int(index), {})[entry] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: Path, *, generator: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                    auxiliary: dict[str, torch.Tensor], scheduler, step: int, meta: dict) -> None:
    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tensors.update({f"aux.{k}": v.detach().cpu().contiguous() for k, v in auxiliary.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    optimizer_meta = {}
    for name, optimizer in optimizers.items():
        found, optimizer_meta[name] = optimizer_tensors(name, optimizer)
        tensors.update(found)
    payload = {**meta, "step": step, "optimizers": optimizer_meta,
               "scheduler": scheduler.state_dict() if scheduler is not None else None}
    atomic_write_bytes(path, save(tensors, metadata={METADATA_KEY: json.dumps(payload, default=_jsonable)}))


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata); raises ValueError naming the file if it is not a checkpoint of this suite."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[METADATA_KEY])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, KeyError, ValueError, RuntimeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable generator checkpoint of this suite ({error}); delete it to "
                         f"restart from the previous one, or train again into a new --out folder.") from error
    return tensors, meta


def restore_checkpoint(tensors: dict[str, torch.Tensor], meta: dict, *, generator: torch.nn.Module,
                       optimizers: dict[str, torch.optim.Optimizer], auxiliary: dict[str, torch.Tensor],
                       scheduler) -> int:
    """Load everything :func:`save_checkpoint` wrote into the live objects; returns the step to resume at."""
    generator.load_state_dict({k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")})
    with torch.no_grad():
        for key, param in auxiliary.items():
            param.copy_(tensors[f"aux.{key}"])
    for name, optimizer in optimizers.items():
        restore_optimizer(name, optimizer, tensors, meta["optimizers"][name])
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"])


def generator_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """θ alone (the ``generator.`` tensors, prefix removed) and the metadata: what inference needs."""
    tensors, meta = read_checkpoint(path)
    return {k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")}, meta


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
