"""The paper-style report: tables (Markdown + CSV + LaTeX), figures (PNG + PDF), grids (PNG), report.md.

    python -m analysis.report --metrics reports/metrics --results results --content data/prepared/content \
        --styles data/staged/styles --params params.yaml --out reports/paper \
        [--tile PX] [--grid-rows N] [--rapsd-size PX]

Reads ``aggregate.csv``/``per_image.csv`` (eval.run: one pair per run in ``--metrics/<run>/``, or one combined
pair), the results tree (images + sidecars), the content and style sets, and params.yaml: the profile label,
the styles and the runs. A run is reported only if params.yaml declares it, and is a row of exactly the tables
its ``tables`` entry names, under the label given there. Writes everything under --out, including the
figures' data as long-format CSV (``lambda_tradeoff.csv``, ``rapsd.csv``). Anything missing — a run, a
metric, images — becomes "—" or a placeholder with the reason, never a crash.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from analysis import figures
from analysis import paper_tables as pt
from analysis.browser import write_browser
from analysis.inputs import Inputs, Slot
from analysis.rapsd import curves_csv
from sms.outputs import atomic_write_bytes


class Report:
    """Collects report.md's lines and every file written, so the report can link each one."""

    def __init__(self, out: Path, provenance: str = ""):
        self.out = out
        self.provenance = provenance   # which backbones are real and which are stand-ins, under every table
        self.lines: list[str] = []
        self.files: list[Path] = []
        self.tables: list = []    # the tables written; the results browser shows them too
        self.grids: dict = {}     # grid name → (style → its columns): the browser's column groups

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def link(self, path: Path, text: str | None = None) -> str:
        target = os.path.relpath(path, self.out).replace(os.sep, "/")
        return f"[{text or path.name}]({target})"

    def image(self, path: Path, alt: str) -> str:
        return f"![{alt}]({os.path.relpath(path, self.out).replace(os.sep, '/')})"

    def wrote(self, *paths: Path) -> None:
        self.files.extend(paths)

    def table(self, table, notes: list[str] | None = None) -> None:
        if self.provenance:
            table.caption = f"{table.caption} {self.provenance}".strip()
        paths = table.write(self.out / "tables")
        self.tables.append(table)
        self.wrote(*paths.values())
        self.add(f"## {table.title}", "", table.to_markdown(),
                 "Files: " + " · ".join(self.link(paths[k], k.upper() if k != "tex" else "LaTeX")
                                        for k in ("md", "csv", "tex")), "")
        for note in notes or []:
            self.add(f"- {note}")


def backbones(definitions: dict[str, str]) -> tuple[list[str], list[str]]:
    """(metrics on random stand-in weights, metrics on real weights): a weights hash is ``@<hash>`` in the
    definition id, marked ``standin-random-`` for stand-ins; metrics without weights are in neither."""
    standin = sorted(metric for metric, text in definitions.items() if "standin" in text)
    real = sorted(metric for metric, text in definitions.items() if "@" in text and "standin" not in text)
    return standin, real


def provenance_note(standin: list[str], real: list[str]) -> str:
    if not standin:
        return ""
    note = f"Stand-in (random) backbones: {', '.join(standin)}."
    return f"{note} Real backbones: {', '.join(real)}." if real else note


def _first_size(inputs: Inputs) -> int | None:
    for _, path in inputs.content_images():
        try:
            with Image.open(path) as image:
                return min(image.size)
        except OSError:
            continue
    return None


def _grid(report: Report, inputs: Inputs, name: str, title: str, slots_for, rows: int, tile: int) -> None:
    images = inputs.content_images()[:rows]
    report.grids[name] = slots_for
    for style in inputs.styles:
        if not images:
            report.add(f"*{title} ({style}): no grid — no content images under {inputs.content}.*", "")
            continue
        columns, notes = figures.grid_columns(inputs, slots_for(style), style, images)
        path = report.out / "grids" / f"{name}_{style}.png"
        figures.save_png(figures.compose_grid(columns, tile), path)
        report.wrote(path)
        report.add(f"**{title} — {style}** ({report.link(path)}; rows: {', '.join(i for i, _ in images)})", "",
                   report.image(path, f"{title}, {style}"), "")
        report.add(*[f"- {note}" for note in notes + weights_note(inputs, slots_for(style))], "")


def weights_note(inputs: Inputs, slots: list[Slot]) -> list[str]:
    """Which columns come from stand-in weights (sidecar label set) and which from real ones, when both occur
    (the demo: tiny random diffusion models beside Magenta's real ONNX networks)."""
    labelled = {slot.label: {bool(s.get("label")) for s in inputs.sidecars(slot.run)} for slot in slots}
    stand_in = [label for label, kinds in labelled.items() if True in kinds]
    real = [label for label, kinds in labelled.items() if kinds == {False}]
    if not stand_in or not real:
        return []
    return [f"Stand-in weights (their pixels test the machinery, not the method): {', '.join(stand_in)}. "
            f"Real weights: {', '.join(real)}."]


def _plain_main_runs(inputs: Inputs) -> list[Slot]:
    """Main-table runs at their method's own settings: one column per method."""
    return [slot for slot in inputs.tagged("main")
            if not any(inputs.runs[slot.run].get(key) for key in ("profile", "set", "loop"))]


def _setting_variants(inputs: Inputs) -> list[Slot]:
    """Each main-table run that changes its method's settings, after that method's plain run."""
    plain = {inputs.runs[slot.run].get("method"): slot for slot in _plain_main_runs(inputs)}
    columns = []
    for slot in inputs.tagged("main"):
        if slot not in plain.values():
            base = plain.get(inputs.runs[slot.run].get("method"))
            columns += [base, slot] if base else [slot]
    return columns


def _rapsd(report: Report, inputs: Inputs, size: int) -> None:
    report.add("## RAPSD (supplement C)", "",
               f"Radially averaged power spectra (grey luma, mean removed, square {size}px, per-image spectra "
               "averaged per domain, band = 10–90% quantiles across images): content set vs style reference "
               "set vs each method's outputs, one figure per style. Share of power at ≥ "
               f"{figures.HIGH_MIN:g} cycles/pixel per domain in the last column.", "")
    cache: dict = {}
    curves = []
    for style in inputs.styles:
        domains, names, notes = figures.rapsd_domains(inputs, style, inputs.tagged("rapsd"), size, cache)
        if domains:
            png, pdf = (report.out / "figures" / f"rapsd_{style}.{ext}" for ext in ("png", "pdf"))
            figures.rapsd_figure(domains, png, pdf)
            report.wrote(png, pdf)
            report.add(f"**{style}** ({report.link(png, 'PNG')} · {report.link(pdf, 'PDF')})", "",
                       report.image(png, f"RAPSD, {style}"), "", "| domain | images | HF power share |",
                       "|:---|---:|---:|")
            for label, spectrum in domains.items():
                curves.append(((f"{style}/{names[label]}", style, names[label]), spectrum))
                report.add(f"| {label} | {spectrum.n} | {figures.hf_ratio(spectrum):.4g} |")
            report.add("")
        else:
            report.add(f"*{style}: no RAPSD figure — no domain had images.*", "")
        report.add(*[f"- {note}" for note in notes], "")
    path = report.out / "rapsd.csv"
    atomic_write_bytes(path, curves_csv(curves, keys=("curve", "style", "domain")).encode("utf-8"))
    report.wrote(path)
    report.add(f"Curves (long format curve/style/domain/n/freq/mean/low/high): {report.link(path)}", "")


def _lambda(report: Report, inputs: Inputs, rows: int, tile: int) -> None:
    score = pt.style_metric(inputs)
    lambda_table, points = pt.lambda_table(inputs, score)
    chosen = {"clip_style": "clip_style (CLIP similarity to the style reference images)",
              "clip_score": "clip_score (CLIP text–image score; clip_style has no value)"}.get(
        score, "none (neither clip_style nor clip_score has a value): the curve has no points")
    report.table(lambda_table, [f"Style score used for the trade-off: {chosen}."])
    csv_path = report.out / "lambda_tradeoff.csv"
    atomic_write_bytes(csv_path, figures.tradeoff_csv(points).encode("utf-8"))
    png, pdf = (report.out / "figures" / f"lambda_tradeoff.{ext}" for ext in ("png", "pdf"))
    drawn = figures.tradeoff_figure(points, score, png, pdf)
    report.wrote(csv_path, png, pdf)
    report.add("", f"**Content–style trade-off** ({drawn} points; {report.link(png, 'PNG')} · "
                   f"{report.link(pdf, 'PDF')} · data {report.link(csv_path)})", "", report.image(png, "λ trade-off"),
               "")
    _grid(report, inputs, "lambda", "λ sweep",
          lambda style: [Slot(f"λ = {pt.lambda_text(value)}", slot.run)
                         for value, slot in pt.lambda_rows(inputs, style)], rows, tile)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=Path, default=Path("reports/metrics"),
                        help="[<run>/]aggregate.csv + per_image.csv")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results/<run>/<style>/")
    parser.add_argument("--content", type=Path, default=Path("data/prepared/content"))
    parser.add_argument("--styles", type=Path, default=Path("data/staged/styles"), help="<style>/ reference sets")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("reports/paper"))
    parser.add_argument("--tile", type=int, help="grid cell size in px (default: content size, 64–256)")
    parser.add_argument("--grid-rows", type=int, default=6, help="content images per grid (default 6)")
    parser.add_argument("--rapsd-size", type=int, help="side of the centred square crop, resized, before the FFT (default: content size)")
    args = parser.parse_args(argv)
    for name in ("tile", "grid_rows", "rapsd_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive number")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    inputs = Inputs.load(args.metrics, args.results, args.content, args.styles, args.params)
    out = args.out
    standin, real = backbones(inputs.definitions())
    report = Report(out, provenance_note(standin, real))
    size = _first_size(inputs)
    tile = args.tile or min(max(size or 128, 64), 256)
    label = inputs.label or f"profile {inputs.profile or '?'}: no label in params.yaml"
    report.add(f"**{label}**", "", f"# SMS suite report — profile `{inputs.profile or '?'}`", "",
               f"Built by `python -m analysis.report` from {args.metrics} (aggregate.csv, per_image.csv), "
               f"{args.results}, {args.content}, {args.styles} and {args.params}. Styles: "
               f"{', '.join(inputs.styles) or 'none'}. Missing values are — with a numbered reason below each "
               "table; missing images are grey — tiles.", "",
               f"**Browse every image** (grids by style, side-by-side comparison with per-image metrics, sortable "
               f"tables; offline): {report.link(out / 'index.html')}", "")
    if standin:
        report.add(f"**Computed with random stand-in weights ({', '.join(standin)}; definition id says "
                   "`standin`): these numbers test the machinery, not any paper.**", "")
    if standin and real:
        report.add(f"**Computed with real backbone weights: {', '.join(real)}.**", "")
    problems_at = len(report.lines)  # filled in last: reading the results may add problems

    report.table(pt.table1_runtime(inputs))
    report.table(pt.main_table(inputs))
    other = pt.other_metrics_table(inputs)
    if other is not None:
        report.table(other)
    report.add("### Qualitative comparison", "")
    methods = _plain_main_runs(inputs)
    _grid(report, inputs, "methods", " | ".join(["content", *(slot.label for slot in methods)]),
          lambda style: methods, args.grid_rows, tile)
    _grid(report, inputs, "style_prior", "Supplement Figure 2: baselines with/without the style prior",
          lambda style: _setting_variants(inputs), args.grid_rows, tile)

    report.table(pt.ablation_table(inputs))
    _grid(report, inputs, "ablation", "Ablation variants", lambda style: inputs.tagged("ablation"),
          args.grid_rows, tile)
    report.table(pt.feedforward_table(inputs))
    _grid(report, inputs, "feedforward", "Feed-forward generators", lambda style: inputs.tagged("feedforward"),
          args.grid_rows, tile)
    report.table(pt.identity_table(inputs))
    _grid(report, inputs, "identity", "Figure 3: identity losses", lambda style: inputs.tagged("identity"),
          args.grid_rows, tile)
    _lambda(report, inputs, args.grid_rows, tile)
    _rapsd(report, inputs, args.rapsd_size or min(size or 256, 512))

    definitions = inputs.definitions()
    if definitions:
        report.add("## Metric definitions (definition_id in aggregate.csv)", "",
                   *[f"- `{metric}`: `{text}`" for metric, text in definitions.items()], "")
    if inputs.problems:
        report.lines[problems_at:problems_at] = ["**Missing or ignored inputs:**", "",
                                                 *[f"- {p}" for p in inputs.problems], ""]
    browser = write_browser(inputs, out, tables=report.tables, grids=report.grids, figures=report.files,
                            standin=standin, real=real)
    report.wrote(browser.page)
    report.add("## Files", "", *[f"- {report.link(path, os.path.relpath(path, out))}" for path in report.files], "")
    report_path = out / "report.md"
    atomic_write_bytes(report_path, "\n".join(report.lines).encode("utf-8"))
    print(f"wrote {report_path} and {len(report.files)} files ({len(inputs.problems)} missing or ignored inputs); "
          f"results browser {browser.page}: {browser.thumbs.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
