"""The one interface above the method families: images in, stylised images out, with a config, named
profiles, timings and UNet-call counts.

Families:
  score distillation  — a registered :class:`sms.method.ScoreDistillation` (its gradient) run by the shared loop;
  feed-forward        — a generator distilled from a score-distillation method (``sms train-generator``);
  sampling            — DDIM inversion/sampling with feature injection or image-to-image (StyleID, FreeStyle, …);
  classic             — a network forward or a per-image optimisation outside diffusion (Magenta, Gatys).
The last two are :class:`Stylizer` subclasses registered in :data:`stylizers`; the runner writes the same PNG and
sidecar for every family, so evaluation, resume, shards and executors never look at which family ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from sms.registry import Registry

if TYPE_CHECKING:
    from sms.config import ResolvedRun
    from sms.models.stack import ModelStack
    from sms.rng import RandomStreams

stylizers: Registry = Registry("stylizer")

#: what a method takes as its style: the style's text prompt, its LoRA (or style checkpoint), an exemplar image
STYLE_INPUTS = ("prompt", "lora", "exemplar")


@dataclass
class Stylized:
    """One image's result, whatever the family."""

    image: Image.Image
    seconds_total: float
    phases: dict[str, float]            # seconds of each timed phase, e.g. {"inversion": …, "sampling": …}
    unet_forwards: int                  # sample rows through a UNet (a cond/uncond pair counts 2)
    steps: int                          # the method's own step count (sampling steps, optimisation iterations)
    peak_memory_bytes: int | None = None
    record: dict[str, Any] = field(default_factory=dict)   # family-specific sidecar fields


class Stylizer:
    """Base of a sampling or classic method: subclass, set the class attributes, implement :meth:`stylize`.

    ``models`` is the suite's SD stack (``needs_diffusion``), else None; ``run`` is the resolved run (its
    ``method_config`` is an instance of ``Config``, ``loop.seed`` and ``loop.resolution`` apply)."""

    Config: ClassVar[type]
    profiles: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"default": {}}
    default_profile: ClassVar[str] = "default"
    family: ClassVar[str] = "sampling"
    style_inputs: ClassVar[tuple[str, ...]] = ("prompt",)
    needs_diffusion: ClassVar[bool] = True   # False: the SD stack is not loaded (a classic network's own weights)
    #: the ModelSpec fields naming this method's own weights (e.g. ("vgg19",), ("controlnet",)): only these runs'
    #: results depend on them (config digest, sidecar)
    spec_weights: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config, models: "ModelStack | None", run: "ResolvedRun"):
        self.config = config
        self.models = models
        self.run = run

    def stylize(self, image: Image.Image, image_id: str, streams: "RandomStreams", *,
                exemplar: Image.Image | None = None, progress: bool = True) -> Stylized:
        raise NotImplementedError

    @classmethod
    def expected_unet_forwards(cls, config, run: "ResolvedRun") -> int | None:
        """The UNet rows one image costs under ``config`` (the conformance tests count them by hooks); None:
        the method makes no UNet call."""
        return None

    @classmethod
    def stand_in(cls, run: "ResolvedRun") -> bool:
        """Whether this run's weights are stand-ins (labelled so in sidecars, tables and grids)."""
        from sms.models.loading import TINY

        return cls.needs_diffusion and run.run.model.base == TINY

    @classmethod
    def weights(cls, run: "ResolvedRun") -> dict[str, str | None]:
        """label → file of the method's own weights (an ONNX network, VGG-19, a ControlNet), hashed into its
        results' config digest and sidecars, and checked by `sms check`. Default: the ``spec_weights`` fields."""
        return {name: getattr(run.run.model, name) for name in cls.spec_weights}


#: ModelSpec fields that only single methods use (``spec_weights``); other runs' digests ignore them
METHOD_WEIGHT_FIELDS = ("controlnet", "vgg19")
#: what a method without the SD stack keeps of its ModelSpec
DEVICE_FIELDS = ("device", "dtype")
#: ModelSpec fields of the style's own SD weights: only methods whose style input includes the LoRA use them
STYLE_WEIGHT_FIELDS = ("style_base", "style_base_config", "style_lora", "lora_scale", "apply_text_encoder_lora",
                       "release_lora_merge")


def uses_style_weights(method_cls: type) -> bool:
    """Whether a method runs on the style's LoRA / style checkpoint (else its results never depend on them)."""
    return "lora" in getattr(method_cls, "style_inputs", ("lora",))


def model_settings(method_cls: type, model: dict[str, Any]) -> dict[str, Any]:
    """The ModelSpec fields (as a dict) a method's results depend on."""
    own = getattr(method_cls, "spec_weights", ())
    if not method_cls.needs_diffusion:
        return {name: model[name] for name in (*DEVICE_FIELDS, *own)}
    unused = () if uses_style_weights(method_cls) else STYLE_WEIGHT_FIELDS
    return {name: value for name, value in model.items()
            if (name not in METHOD_WEIGHT_FIELDS or name in own) and name not in unused}


def needs_exemplar(method_cls: type) -> bool:
    return "exemplar" in getattr(method_cls, "style_inputs", ())
