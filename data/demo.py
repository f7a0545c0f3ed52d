"""The offline demo sets: public-domain / CC0 photos that ship inside installed wheels.

Content: scikit-image's astronaut, coffee, chelsea, rocket, hubble_deep_field, retina,
immunohistochemistry and matplotlib's grace_hopper, re-encoded as metadata-free PNGs.

Style references (``--style``):
  painted   (default) "demo-painted": each photo median-filtered and quantised to a 12-colour palette,
            i.e. flat colour regions with sharp edges and little fine texture -- a stand-in for the
            anime domains (less high-frequency power), fully deterministic, derived from CC0/PD photos.
  textures  "demo-textures": scikit-image's CC0 brick, grass and gravel textures (grey, as RGB).

    python -m data.demo --out data/staged/demo [--style-out data/staged/demo_style] [--style painted]
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter

from data.files import DataError, staged_manifest
from data.images import load_rgb
from sms.hashing import sha256_bytes, sha256_file
from sms.outputs import atomic_write_bytes, atomic_write_json, png_bytes

PAINTED_MAX_SIDE = 512
PAINTED_COLOURS = 12
PAINTED_MEDIAN = 5


@dataclass(frozen=True)
class ShippedImage:
    id: str
    package: str
    name: str
    filename: str
    licence: str


DEMO_PHOTOS = (
    ShippedImage("astronaut", "scikit-image", "skimage.data.astronaut", "astronaut.png", "public domain (NASA)"),
    ShippedImage("coffee", "scikit-image", "skimage.data.coffee", "coffee.png", "CC0 (Rachel Michetti)"),
    ShippedImage("chelsea", "scikit-image", "skimage.data.chelsea", "chelsea.png", "CC0 (Stefan van der Walt)"),
    ShippedImage("rocket", "scikit-image", "skimage.data.rocket", "rocket.jpg", "public domain (SpaceX)"),
    ShippedImage("hubble_deep_field", "scikit-image", "skimage.data.hubble_deep_field", "hubble_deep_field.jpg",
                 "public domain (NASA)"),
    ShippedImage("retina", "scikit-image", "skimage.data.retina", "retina.jpg",
                 "CC0 1.0 (M. Haggstrom, Wikimedia Commons)"),
    ShippedImage("immunohistochemistry", "scikit-image", "skimage.data.immunohistochemistry", "ihc.png",
                 "no known copyright restrictions (CMMI)"),
    ShippedImage("grace_hopper", "matplotlib", "matplotlib sample_data/grace_hopper.jpg", "grace_hopper.jpg",
                 "public domain (U.S. Navy)"),
)

DEMO_TEXTURES = (
    ShippedImage("brick", "scikit-image", "skimage.data.brick", "brick.png", "CC0 (CC0Textures Bricks25)"),
    ShippedImage("grass", "scikit-image", "skimage.data.grass", "grass.png", "CC0 (DeviantArt linolafett)"),
    ShippedImage("gravel", "scikit-image", "skimage.data.gravel", "gravel.png", "CC0 (CC0Textures Gravel04)"),
)


def shipped_path(item: ShippedImage) -> Path:
    if item.package == "matplotlib":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / item.filename
    else:
        import skimage.data

        path = Path(skimage.data.__file__).parent / item.filename
    if not path.is_file():
        raise DataError(
            f"{item.package} {version(item.package)} does not ship {item.filename} (looked at {path}); "
            "the demo set needs the sample images bundled in scikit-image>=0.22 and matplotlib>=3.8."
        )
    return path


def painted(image: Image.Image) -> Image.Image:
    """Flat-colour "painted" look: smaller, median-smoothed, quantised to a small palette, no dithering."""
    small = image.copy()
    small.thumbnail((PAINTED_MAX_SIDE, PAINTED_MAX_SIDE), Image.Resampling.LANCZOS)
    smooth = small.filter(ImageFilter.MedianFilter(PAINTED_MEDIAN))
    palette = smooth.quantize(colors=PAINTED_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return palette.convert("RGB")


def _write_record(out: Path, item: ShippedImage, image: Image.Image, id_: str) -> dict[str, Any]:
    source = shipped_path(item)
    data = png_bytes(image)
    atomic_write_bytes(out / f"{id_}.png", data)
    return {
        "id": id_,
        "file": f"{id_}.png",
        "source": f"{item.package}:{item.name}",
        "package": item.package,
        "package_version": version(item.package),
        "licence": item.licence,
        "source_sha256": sha256_file(source),
        "sha256": sha256_bytes(data),
        "width": image.width,
        "height": image.height,
    }


def _materialise(out: Path, name: str, items: tuple[ShippedImage, ...], description: str,
                 transform: Callable[[Image.Image], Image.Image] | None = None) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for item in items:
        image = load_rgb(shipped_path(item))
        records.append(_write_record(out, item, transform(image) if transform else image, item.id))
    manifest = staged_manifest(name, out, out / "manifest.json", records, description=description)
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def materialise_demo_content(out: Path) -> dict[str, Any]:
    return _materialise(out, "demo", DEMO_PHOTOS, "public-domain/CC0 photos shipped in scikit-image and matplotlib")


STYLE_SETS = {
    "painted": ("demo-painted", DEMO_PHOTOS, painted,
                f"demo photos median-filtered ({PAINTED_MEDIAN}) and quantised to {PAINTED_COLOURS} colours"),
    "textures": ("demo-textures", DEMO_TEXTURES, None, "scikit-image CC0 brick/grass/gravel textures"),
}


def materialise_demo_style(out: Path, kind: str = "painted") -> dict[str, Any]:
    if kind not in STYLE_SETS:
        raise DataError(f"unknown demo style set {kind!r}; choose one of: {', '.join(STYLE_SETS)}")
    name, items, transform, description = STYLE_SETS[kind]
    return _materialise(out, name, items, description, transform)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the content PNGs + manifest.json")
    parser.add_argument("--style-out", type=Path, help="folder for the demo style reference set")
    parser.add_argument("--style", choices=sorted(STYLE_SETS), default="painted", help="which demo style set")
    args = parser.parse_args(argv)
    try:
        content = materialise_demo_content(args.out)
        print(f"demo content: {content['count']} images -> {args.out}")
        if args.style_out is not None:
            style = materialise_demo_style(args.style_out, args.style)
            print(f"demo style ({style['name']}): {style['count']} images -> {args.style_out}")
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
