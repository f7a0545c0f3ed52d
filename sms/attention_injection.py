"""Self-attention feature injection (StyleID, Chung, Hyun & Heo, CVPR 2024, §4): attention processors that
cache a UNet's self-attention projections per denoising step, and later attend with cached ones.

Each chosen layer runs in one of three modes, set on the shared :class:`InjectionState`:
  off      — ordinary self-attention, softmax(Q Kᵀ·s) V with s = the layer's scale (1/√d);
  capture  — the same output, and the rows named in ``InjectionState.keep`` of Q, K, V are cached under the
             current step key (e.g. Q of the content row and K, V of the style row of a batched inversion);
  inject   — attend with the cached K, V, the query blended with the cached one (query preservation,
             q̃ = γ·Q_cached + (1 − γ)·Q_current) and the logits multiplied by T (attention temperature scaling):
             softmax(T·q̃ Kᵀ·s) V.
Only what injection reads is cached, in the UNet's dtype. Every other layer keeps its own processor, and
:func:`installed` puts the chosen layers' own processors back on exit.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

OFF, CAPTURE, INJECT = "off", "capture", "inject"
KINDS = ("q", "k", "v")


def blend_query(cached: torch.Tensor, current: torch.Tensor, gamma: float) -> torch.Tensor:
    """Query preservation (StyleID §4): q̃ = γ·Q_cached + (1 − γ)·Q_current; γ = 1 keeps the cached query."""
    return gamma * cached + (1.0 - gamma) * current


def attend(attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
           temperature: float = 1.0) -> torch.Tensor:
    """softmax(T·Q Kᵀ·s) V per head, (batch, tokens, channels) in and out; T multiplies the logits (StyleID's
    attention temperature scaling), s is the layer's own scale."""
    batch, heads = query.shape[0], attn.heads
    split = lambda x: x.view(x.shape[0], -1, heads, x.shape[-1] // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(split(query), split(key), split(value), scale=attn.scale * temperature)
    return out.transpose(1, 2).reshape(batch, -1, query.shape[-1]).to(query.dtype)


@dataclass
class FeatureBank:
    """Cached projections by (layer name, step key, kind); each (rows, tokens, channels)."""

    tensors: dict[tuple[str, int, str], torch.Tensor] = field(default_factory=dict)

    def put(self, layer: str, step: int, kind: str, tensor: torch.Tensor) -> None:
        self.tensors[(layer, step, kind)] = tensor.detach()

    def get(self, layer: str, step: int, kind: str) -> torch.Tensor:
        try:
            return self.tensors[(layer, step, kind)]
        except KeyError:
            raise LookupError(f"no cached {kind!r} of layer {layer!r} at step {step}: injection needs a capture "
                              "pass over the same steps and layers first") from None

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def clear(self) -> None:
        self.tensors.clear()


@dataclass
class InjectionState:
    """What every installed processor does now; one state is shared by all layers of one run."""

    gamma: float = 1.0                   # query preservation γ
    temperature: float = 1.0             # attention temperature T (inject mode only)
    keep: dict[str, int] = field(default_factory=lambda: {"q": 0, "k": 1, "v": 1})   # kind → batch row to cache
    steps: frozenset[int] | None = None  # step keys worth caching (None: all)
    bank: FeatureBank = field(default_factory=FeatureBank)
    mode: str = OFF
    step: int | None = None

    def __post_init__(self):
        unknown = set(self.keep) - set(KINDS)
        if unknown:
            raise ValueError(f"InjectionState.keep names {sorted(unknown)}; it maps projections {KINDS} to rows")

    @contextmanager
    def capturing(self, step: int) -> Iterator[None]:
        with self._mode(CAPTURE, step):
            yield

    @contextmanager
    def injecting(self, step: int) -> Iterator[None]:
        with self._mode(INJECT, step):
            yield

    @contextmanager
    def _mode(self, mode: str, step: int) -> Iterator[None]:
        self.mode, self.step = mode, step
        try:
            yield
        finally:
            self.mode, self.step = OFF, None

    def wants(self, step: int | None) -> bool:
        return self.steps is None or step in self.steps


class InjectionProcessor:
    """Self-attention of one layer under an :class:`InjectionState` (diffusers' processor protocol)."""

    def __init__(self, name: str, state: InjectionState):
        self.name = name
        self.state = state

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3:
            raise ValueError(f"layer {self.name!r}: feature injection handles unmasked self-attention on "
                             "(batch, tokens, channels) inputs only; choose self-attention (attn1) layers")
        state, bank = self.state, self.state.bank
        query = attn.to_q(hidden_states)
        temperature = 1.0
        if state.mode == INJECT:
            query = blend_query(bank.get(self.name, state.step, "q"), query, state.gamma)
            key, value = bank.get(self.name, state.step, "k"), bank.get(self.name, state.step, "v")
            rows = query.shape[0]
            key, value = key.expand(rows, -1, -1), value.expand(rows, -1, -1)
            temperature = state.temperature
        else:
            key, value = attn.to_k(hidden_states), attn.to_v(hidden_states)
            if state.mode == CAPTURE and state.wants(state.step):
                projections = {"q": query, "k": key, "v": value}
                if max(state.keep.values()) >= query.shape[0]:
                    raise ValueError(f"layer {self.name!r}: asked to cache rows {state.keep} of a "
                                     f"{query.shape[0]}-row batch")
                for kind, row in state.keep.items():
                    bank.put(self.name, state.step, kind, projections[kind][row:row + 1])
        out = attn.to_out[1](attn.to_out[0](attend(attn, query, key, value, temperature)))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def self_attention_layers(unet: torch.nn.Module, up_blocks: Sequence[int] | None = None, *,
                          resolutions: int = 2) -> list[str]:
    """Module names of the self-attention (``attn1``) layers of the chosen decoder blocks.

    Default: the blocks with attention (CrossAttnUpBlock2D) at the last ``resolutions`` resolutions — on
    SD-1.5 ``up_blocks`` 2 and 3, LDM output blocks 6–11, 6 layers (StyleID's choice); on the tiny UNet its
    one such block."""
    blocks = list(unet.up_blocks)
    with_attention = [i for i, block in enumerate(blocks) if getattr(block, "attentions", None)]
    chosen = list(up_blocks) if up_blocks is not None else with_attention[-resolutions:]
    bad = [i for i in chosen if i not in with_attention]
    if bad or not chosen:
        raise ValueError(f"up_blocks {chosen} must name decoder blocks with attention layers; this UNet's are "
                         f"{with_attention} (of {len(blocks)} up-blocks)")
    names = []
    for i in chosen:
        for j, transformer in enumerate(blocks[i].attentions):
            names += [f"up_blocks.{i}.attentions.{j}.transformer_blocks.{k}.attn1"
                      for k in range(len(transformer.transformer_blocks))]
    return names


@contextmanager
def installed(unet: torch.nn.Module, layers: Iterable[str], state: InjectionState) -> Iterator[None]:
    """:class:`InjectionProcessor` on ``layers`` for the block; their own processors are restored after."""
    modules = dict(unet.named_modules())
    originals = {name: modules[name].processor for name in layers}
    try:
        for name in originals:
            modules[name].set_processor(InjectionProcessor(name, state))
        yield
    finally:
        for name, processor in originals.items():
            modules[name].set_processor(processor)
