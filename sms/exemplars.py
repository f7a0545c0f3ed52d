"""Exemplar style images of the methods that take one (StyleID, Magenta, Gatys, …): a file, or a folder from
which each content image gets one file, drawn from (seed, image id) so a rerun, a shard or another executor
picks the same exemplar."""
from __future__ import annotations

from pathlib import Path

import torch

from sms.folders import IMAGE_SUFFIXES, is_image_file, list_images
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


def choose_exemplar(reference: str | Path, seed: int, image_id: str) -> str:
    """The file that content image ``image_id`` is stylised with (the only one, or one drawn uniformly)."""
    files = exemplar_files(reference)
    if not is_image_file(files[0]) and len(files) == 1:
        raise ExemplarError(f"the exemplar {files[0]} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    if len(files) == 1:
        return str(files[0].resolve())
    generator = RandomStreams(seed, image_id).generator(VAE_STEP, "exemplar")
    return str(files[int(torch.randint(len(files), (1,), generator=generator))].resolve())

