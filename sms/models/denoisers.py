"""The three ε-networks of SMS (spec §2) behind one object: real, style and fake.

With one shared UNet the networks are adapters on it: ``real`` = adapters disabled, ``style`` = the frozen
style LoRA, ``fake`` = the trainable fake LoRA. With a different style base, ``style`` is a second UNet.
Every forward is counted per sample row (a batched cond/uncond call counts 2), the suite's NFE unit.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from diffusers import UNet2DConditionModel
from peft.tuners.tuners_utils import BaseTunerLayer

from sms.models import precision
from sms.timesteps import row_timesteps

REAL, STYLE, FAKE = "real", "style", "fake"
_UNKNOWN = object()  # adapter state not cached (at start, and after a trainable call)


class Denoisers:
    def __init__(self, unet: UNet2DConditionModel, style_unet: UNet2DConditionModel, *,
                 style_adapter: str | None, fake_adapter: str = FAKE, tf32: bool = False):
        self.unet = unet
        self.style_unet = style_unet
        self.style_adapter = style_adapter
        self.fake_adapter = fake_adapter
        self.forwards = 0
        self.tf32 = tf32
        self._layers = [module for module in unet.modules() if isinstance(module, BaseTunerLayer)]
        self._active: object = _UNKNOWN
        self._dtype = {id(unet): unet.dtype, id(style_unet): style_unet.dtype}  # ModelMixin.dtype walks all params

    @property
    def shared(self) -> bool:
        return self.style_unet is self.unet

    def fake_named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        marker = f".{self.fake_adapter}."
        return [(name, param) for name, param in self.unet.named_parameters() if marker in name]

    def fake_parameters(self) -> list[torch.nn.Parameter]:
        return [param for _, param in self.fake_named_parameters()]

    def _activate(self, adapter: str | None, trainable: bool = False) -> None:
        if adapter == self._active and not trainable:
            return
        for layer in self._layers:
            if adapter is None:
                layer.enable_adapters(False)
            else:
                layer.enable_adapters(True)
                layer.set_adapter(adapter, inference_mode=not trainable)
        # never cache a trainable call: None would read as "adapters disabled" and make real() skip disabling
        self._active = _UNKNOWN if trainable else adapter

    def _run(self, unet: UNet2DConditionModel, z_t: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        self.forwards += z_t.shape[0]
        t = row_timesteps(t, z_t.shape[0]) if t.ndim else t.repeat(z_t.shape[0])
        dtype = self._dtype[id(unet)]
        with precision.tf32(self.tf32):
            out = unet(z_t.to(dtype), t, encoder_hidden_states=emb.to(dtype)).sample
        return out.float()

    def real(self, z_t: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        self._activate(None)
        return self._run(self.unet, z_t, t, emb)

    def style(self, z_t: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if not self.shared:
            return self._run(self.style_unet, z_t, t, emb)
        self._activate(self.style_adapter)
        return self._run(self.unet, z_t, t, emb)

    def fake(self, z_t: torch.Tensor, t: torch.Tensor, emb: torch.Tensor, *, trainable: bool = False) -> torch.Tensor:
        self._activate(self.fake_adapter, trainable=trainable)
        return self._run(self.unet, z_t, t, emb)

    def batched(self, requests: list[tuple[str, torch.Tensor, torch.Tensor]], t: torch.Tensor) -> list[torch.Tensor]:
        """Evaluate ``(network, z_t, emb)`` requests in as few UNet calls as possible (inference only).

        Rows bound for the shared UNet go through ONE call, each routed to its own adapter by peft's
        mixed-adapter batches (``__base__`` = real), so style, fake and real need not run one after another."""
        by_unet: dict[int, list[int]] = {}
        for index, (network, _, _) in enumerate(requests):
            by_unet.setdefault(id(self._unet_for(network)), []).append(index)
        outputs: list[torch.Tensor | None] = [None] * len(requests)
        for indices in by_unet.values():
            unet = self._unet_for(requests[indices[0]][0])
            z_t = torch.cat([requests[i][1] for i in indices])
            emb = torch.cat([requests[i][2] for i in indices])
            if unet is self.unet and self._layers:
                names = [self._adapter_of(requests[i][0]) for i in indices for _ in range(len(requests[i][1]))]
                with self._routed(names):
                    out = self._run(unet, z_t, t, emb)
            else:
                out = self._run(unet, z_t, t, emb)
            for i, part in zip(indices, out.split([len(requests[i][1]) for i in indices])):
                outputs[i] = part
        return outputs

    def _unet_for(self, network: str) -> UNet2DConditionModel:
        return self.style_unet if network == STYLE and not self.shared else self.unet

    def _adapter_of(self, network: str) -> str:
        adapter = {REAL: None, STYLE: self.style_adapter, FAKE: self.fake_adapter}[network]
        return adapter or "__base__"

    @contextmanager
    def _routed(self, adapter_names: list[str]):
        def inject(module, args, kwargs):
            return args, {**kwargs, "adapter_names": adapter_names}

        for layer in self._layers:
            layer.enable_adapters(True)
        self._active = _UNKNOWN
        hooks = [layer.register_forward_pre_hook(inject, with_kwargs=True) for layer in self._layers]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()

    @contextmanager
    def counting(self):
        """Yield a callable returning the forwards made inside the block."""
        start = self.forwards
        yield lambda: self.forwards - start
