"""RAPSD figure (supplement C): per-domain mean spectrum with a spread band, in three panels --
(a) low frequencies, linear axes; (b) the full range, log-log; (c) high frequencies, linear axes.
The curves are also written as CSV next to the figure (same name, .csv). Each image is cropped to its
largest centred square and resized (bicubic) to --size², the rule of eval.rapsd and of the hf_ratio metric.

    python analysis/rapsd.py DIR [DIR ...] --labels A B ... --out FILE.png
        [--size 256] [--no-grey] [--keep-mean] [--band 0.1 0.9]
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from matplotlib.figure import Figure

from data.files import PREPARED_SCHEMA, STAGED_SCHEMA, DataError, read_json
from eval.rapsd import DomainSpectrum, domain_spectrum, high_frequency_ratio, preprocessing_rule
from sms.folders import list_images
from sms.outputs import atomic_path, atomic_write_bytes

LOW_MAX = 0.1  # cycles/pixel: right edge of panel (a)
HIGH_MIN = 0.25  # cycles/pixel: left edge of panel (c); also the high-frequency-ratio cutoff
FREQ_LABEL = "frequency (cycles/pixel)"
POWER_LABEL = "power"


def domain_images(folder: Path) -> list[Path]:
    """The images a domain folder's manifest lists, or every image in it when it has none."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        manifest = read_json(manifest_path)
        if manifest.get("schema") == PREPARED_SCHEMA:
            return [folder / record["path"] for record in manifest["records"]]
        if manifest.get("schema") == STAGED_SCHEMA:
            root = (folder / manifest["root"]).resolve()
            return [root / record["file"] for record in manifest["records"]]
    return list_images(folder)


def compute_domains(folders: list[Path], labels: list[str], *, size: int = 256, grey: bool = True,
                    remove_mean: bool = True, band: tuple[float, float] = (0.1, 0.9)) -> dict[str, DomainSpectrum]:
    domains = {}
    for folder, label in zip(folders, labels, strict=True):
        if not Path(folder).is_dir():
            raise DataError(f"{folder} (domain {label!r}) is not a folder")
        images = domain_images(folder)
        if not images:
            raise DataError(f"no images in {folder} (domain {label!r})")
        domains[label] = domain_spectrum(images, band=band, size=size, grey=grey, remove_mean=remove_mean)
    return domains


def _draw(ax, domains: dict[str, DomainSpectrum], keep: Callable[[np.ndarray], np.ndarray]) -> None:
    for index, (label, spectrum) in enumerate(domains.items()):
        freq = np.asarray(spectrum.freq)
        shown = keep(freq) & (freq > 0)  # the DC ring is meaningless once the mean is removed
        colour = f"C{index % 10}"
        ax.fill_between(freq[shown], np.asarray(spectrum.low)[shown], np.asarray(spectrum.high)[shown],
                        color=colour, alpha=0.2, linewidth=0)
        ax.plot(freq[shown], np.asarray(spectrum.mean)[shown], color=colour, label=f"{label} (n={spectrum.n})")
    ax.set_xlabel(FREQ_LABEL)
    ax.set_ylabel(POWER_LABEL)
    ax.grid(True, alpha=0.3)


def plot_rapsd(domains: dict[str, DomainSpectrum], out: Path | None = None, *, low_max: float = LOW_MAX,
               high_min: float = HIGH_MIN) -> Figure:
    """Three-panel RAPSD figure; saved atomically to ``out`` (format from its suffix) when given."""
    figure = Figure(figsize=(15, 4.6), layout="constrained")
    low_ax, full_ax, high_ax = figure.subplots(1, 3)
    _draw(low_ax, domains, lambda f: f <= low_max)
    low_ax.set_title(f"(a) low frequencies (≤ {low_max:g})")
    _draw(full_ax, domains, lambda f: np.ones_like(f, dtype=bool))
    full_ax.set_xscale("log")
    full_ax.set_yscale("log")
    full_ax.set_title("(b) full range, log–log")
    _draw(high_ax, domains, lambda f: f >= high_min)
    high_ax.set_title(f"(c) high frequencies (≥ {high_min:g})")
    full_ax.legend(title="domain (images)")
    if out is not None:
        out = Path(out)
        with atomic_path(out) as tmp:
            figure.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=150)
    return figure


def curves_csv(curves: list[tuple[tuple[str, ...], DomainSpectrum]], keys: tuple[str, ...] = ("domain",)) -> str:
    """Long format, one row per curve and frequency: the curve's ``keys`` columns, n, freq, mean, low, high."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*keys, "n", "freq", "mean", "low", "high"])
    for names, spectrum in curves:
        for row in zip(spectrum.freq, spectrum.mean, spectrum.low, spectrum.high, strict=True):
            writer.writerow([*names, spectrum.n, *(f"{value:.10g}" for value in row)])
    return buffer.getvalue()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python analysis/rapsd.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", type=Path, nargs="+", help="one folder of images per domain")
    parser.add_argument("--labels", nargs="+", help="one label per folder (default: folder names)")
    parser.add_argument("--out", type=Path, required=True, help="figure file (.png/.pdf/.svg); CSV beside it")
    parser.add_argument("--size", type=int, default=256,
                        help="largest centred square, resized (bicubic) to SIZE² before the FFT (default 256)")
    parser.add_argument("--no-grey", dest="grey", action="store_false", help="mean of RGB spectra, not luma")
    parser.add_argument("--keep-mean", dest="remove_mean", action="store_false", help="keep each image's mean")
    parser.add_argument("--band", type=float, nargs=2, default=(0.1, 0.9), metavar=("LOW", "HIGH"),
                        help="quantiles across images for the spread band (default 0.1 0.9)")
    args = parser.parse_args(argv)
    args.labels = args.labels or [folder.resolve().name for folder in args.dirs]
    if len(args.labels) != len(args.dirs):
        parser.error(f"{len(args.dirs)} folders but {len(args.labels)} labels")
    if len(set(args.labels)) != len(args.labels):
        parser.error("labels must be distinct")
    if not 0.0 <= args.band[0] < args.band[1] <= 1.0:
        parser.error("--band needs two quantiles 0 <= LOW < HIGH <= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        domains = compute_domains(args.dirs, args.labels, size=args.size, grey=args.grey,
                                  remove_mean=args.remove_mean, band=tuple(args.band))
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plot_rapsd(domains, args.out)
    csv_path = args.out.with_suffix(".csv")
    atomic_write_bytes(csv_path, curves_csv([((label,), s) for label, s in domains.items()]).encode("utf-8"))
    for label, spectrum in domains.items():
        ratio = high_frequency_ratio(spectrum.mean, spectrum.freq, cutoff=HIGH_MIN)
        print(f"{label}: n={spectrum.n}, power share at >= {HIGH_MIN:g} cycles/pixel = {ratio:.4g}")
    print(f"preprocessing: {preprocessing_rule(args.size)}; wrote {args.out} and {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
