"""Exemplar style images of the methods that take one (StyleID, Magenta, Gatys, …): a file, or a folder from
which each content image gets one file, drawn from (seed, image id) so a rerun, a shard or another executor
picks the same exemplar."""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from sms.folders import IMAGE_SUFFIXES, is_image_file, list_images
from sms.images import ImageLoadError, load_rgb
from sms.rng import VAE_STEP, RandomStreams


class ExemplarError(ValueError):
    """An exemplar reference that names no usable image; the message says how to supply one."""


def exemplar_files(reference: str | Path) -> list[Path]:
    path = Path(reference).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        found = list_images(path)
        if found:
            return found
        raise ExemplarError(f"the exemplar folder {path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}): "
                            "put the style's reference images there or name one image file.")
    raise ExemplarError(f"the exemplar {path} does not exist: give a style image or a folder of them "
                        "(params.yaml: styles.STYLE.exemplar; by hand: --exemplar).")


@functools.lru_cache(maxsize=4096)
def _unreadable(path: str, size: int, mtime_ns: int) -> str | None:
    """Why the file cannot be used, or None; decoded once per process and version of the file, not per image."""
    try:
        load_rgb(path)
    except ImageLoadError as error:
        return str(error)
    return None


def choose_exemplar(reference: str | Path, seed: int, image_id: str) -> str:
    """The file that content image ``image_id`` is stylised with: the only one, or one drawn uniformly; an
    unreadable draw passes to the next file in sorted order (style sets hold the odd broken file, which staging
    records and metrics skip), so the choice stays a function of (seed, image id, folder contents)."""
    files = exemplar_files(reference)
    if len(files) == 1 and not is_image_file(files[0]):
        raise ExemplarError(f"the exemplar {files[0]} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    start = 0
    if len(files) > 1:
        generator = RandomStreams(seed, image_id).generator(VAE_STEP, "exemplar")
        start = int(torch.randint(len(files), (1,), generator=generator))
    problems = []
    for path in files[start:] + files[:start]:
        stat = path.stat()
        problem = _unreadable(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if problem is None:
            return str(path.resolve())
        problems.append(problem)
    raise ExemplarError(f"no exemplar in {reference} is a usable image: {'; '.join(problems[:3])}"
                        f"{' …' if len(problems) > 3 else ''}. Replace the file(s) or name another exemplar.")
