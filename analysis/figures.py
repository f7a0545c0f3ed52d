"""Report figures: qualitative grids (PIL), the RAPSD panels (analysis.rapsd) and the λ trade-off curve.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (Agg, no pyplot state) and saved as PNG + PDF.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from PIL import Image, ImageDraw, ImageFont, ImageOps

from analysis.inputs import Inputs, Slot
from analysis.rapsd import HIGH_MIN, compute_domains, plot_rapsd
from eval.rapsd import DomainSpectrum, domain_spectrum, high_frequency_ratio
from sms.outputs import atomic_path, atomic_write_bytes

PLACEHOLDER = (215, 215, 215)


# --- grids -----------------------------------------------------------------------------------------------
def _font(size: int):
    """DejaVu Sans from matplotlib (has λ and —), else Pillow's default font."""
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=True), size)
    except (OSError, ValueError, ImportError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _centred(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, font) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)  # no anchor: bitmap fonts lack it
    draw.text((centre[0] - (right + left) / 2, centre[1] - (bottom + top) / 2), text, fill="black", font=font)


def header_height(tile: int) -> int:
    return max(14, tile // 6)


def compose_grid(columns: list[tuple[str, list[Path | None]]], tile: int) -> Image.Image:
    """Rows of ``tile``×``tile`` cells under a header of column labels; a missing image is a grey tile.

    The grid is exactly ``len(columns) * tile`` wide and ``header_height(tile) + rows * tile`` high.
    """
    rows = max((len(paths) for _, paths in columns), default=0)
    header = header_height(tile)
    grid = Image.new("RGB", (len(columns) * tile, header + rows * tile), "white")
    draw = ImageDraw.Draw(grid)
    font = _font(max(8, header - 4))
    for c, (label, paths) in enumerate(columns):
        _centred(draw, (c * tile + tile / 2, header / 2), _fit(draw, label, font, tile - 4), font)
        absent = "missing" if any(paths) else "absent"
        for r in range(rows):
            path = paths[r] if r < len(paths) else None
            box = (c * tile, header + r * tile)
            if path is not None:
                with Image.open(path) as image:
                    grid.paste(ImageOps.fit(image.convert("RGB"), (tile, tile), Image.Resampling.LANCZOS), box)
            else:
                draw.rectangle([box, (box[0] + tile - 1, box[1] + tile - 1)], fill=PLACEHOLDER)
                _centred(draw, (box[0] + tile / 2, box[1] + tile / 2), _fit(draw, absent, font, tile - 4), font)
    return grid


def grid_columns(inputs: Inputs, slots: list[Slot], style: str, images: list[tuple[str, Path]]):
    """The content column plus one column per slot, and notes on the runs/images that are missing."""
    columns = [("content", [path if path.is_file() else None for _, path in images])]
    notes = []
    for slot in slots:
        paths = [inputs.output(slot.run, style, image) for image, _ in images]
        if not any(paths):
            notes.append(f"{slot.label}: no images under {inputs.results / slot.run / style}")
        elif any(p is None for p in paths):
            notes.append(f"{slot.label}: {sum(p is None for p in paths)} of {len(paths)} images missing")
        columns.append((slot.label, paths))
    return columns, notes


def save_png(image: Image.Image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


# --- RAPSD -----------------------------------------------------------------------------------------------
def save_figure(figure: Figure, png: Path, pdf: Path) -> None:
    for path in (png, pdf):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=path.suffix.lstrip("."), dpi=150)


def rapsd_domains(inputs: Inputs, style: str, slots: list[Slot], size: int,
                  cache: dict) -> tuple[dict[str, DomainSpectrum], dict[str, str], list[str]]:
    """Spectra for one style: content, the style set, each run's outputs. Returns (by legend label,
    legend label → domain name for the CSV: content, style set or the run, notes on domains left out)."""
    domains, names, notes = {}, {}, []

    def attempt(label: str, domain: str, key: str, compute) -> None:
        try:
            if key not in cache:
                cache[key] = compute()
            domains[label], names[label] = cache[key], domain
        except Exception as error:  # a missing/unreadable domain leaves the others standing
            notes.append(f"{key}: left out ({type(error).__name__}: {error})")

    attempt("content", "content", "content",
            lambda: compute_domains([inputs.content], ["content"], size=size)["content"])
    folder = inputs.styles_dir / style
    attempt(f"style set: {style}", "style set", f"style:{style}",
            lambda: compute_domains([folder], [style], size=size)[style])
    for slot in slots:
        outputs = inputs.outputs(slot.run, style)
        if not outputs:
            notes.append(f"{slot.run}/{style}: left out (no images under {inputs.results / slot.run / style})")
            continue
        attempt(slot.label, slot.run, f"{slot.run}/{style}",
                lambda outputs=outputs: domain_spectrum(outputs, size=size))
    return domains, names, notes


def rapsd_figure(domains: dict[str, DomainSpectrum], png: Path, pdf: Path) -> None:
    figure = plot_rapsd(domains)
    figure.get_axes()[1].xaxis.set_minor_formatter(NullFormatter())  # log-axis minor labels overlap
    save_figure(figure, png, pdf)


def hf_ratio(spectrum: DomainSpectrum) -> float:
    try:
        return high_frequency_ratio(spectrum.mean, spectrum.freq, cutoff=HIGH_MIN)
    except ValueError:
        return math.nan


# --- λ trade-off -----------------------------------------------------------------------------------------
def tradeoff_csv(points: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["lambda", "lpips", "style_score", "style", "run", "style_metric"])
    for p in points:
        writer.writerow([f"{p['lambda']:g}", _num(p["lpips"]), _num(p["style_score"]), p["style"], p["run"],
                         p["style_metric"]])
    return buffer.getvalue()


def _num(value) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.10g}"


def tradeoff_figure(points: list[dict], metric: str | None, png: Path, pdf: Path) -> int:
    """LPIPS (x) against the style score (y), one point per λ, joined in λ order per style; returns #points."""
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    ax = figure.subplots()
    drawn = 0
    styles = list(dict.fromkeys(p["style"] for p in points))
    for index, style in enumerate(styles):
        shown = [p for p in points if p["style"] == style and p["lpips"] is not None and p["style_score"] is not None]
        if not shown:
            continue
        drawn += len(shown)
        ax.plot([p["lpips"] for p in shown], [p["style_score"] for p in shown], "o-", color=f"C{index % 10}",
                label=style)
        for p in shown:
            ax.annotate(f"λ={p['label']}", (p["lpips"], p["style_score"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
    if drawn:
        ax.legend(title="style")
    else:
        ax.text(0.5, 0.5, "no (LPIPS, style score) pairs yet:\nsee the λ table for the reasons",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("LPIPS to the content image ↓ (content kept)")
    ax.set_ylabel(f"{metric or 'style score (none available)'} ↑ (style)")
    ax.set_title("Content–style trade-off over λ")
    ax.grid(True, alpha=0.3)
    save_figure(figure, png, pdf)
    return drawn
