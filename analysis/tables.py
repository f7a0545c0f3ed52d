"""Report tables: cells that carry a value, its 95% CI and (when absent) the reason, rendered three ways.

A :class:`Table` renders as Markdown (a missing value is "—" plus a numbered note giving the reason), CSV
(numbers unformatted: ``<key>``, ``<key>_ci_low``, ``<key>_ci_high`` per numeric column, reasons in
``notes``) and a self-contained LaTeX ``tabular`` (no booktabs, no jinja2 needed).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from sms.outputs import atomic_write_bytes

DASH = "—"


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Cell:
    """One number (``value`` with an optional CI) or, when ``value`` is absent, the ``note`` saying why."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    note: str | None = None
    text: str | None = None  # display override (e.g. "6.553+2.683")
    digits: int = 3
    ci_digits: int = 2

    @property
    def present(self) -> bool:
        return _finite(self.value)

    def display(self) -> str:
        if self.text is not None:
            return self.text
        if not self.present:
            return DASH
        magnitude = abs(self.value)
        if 0 < magnitude < 10 ** -self.ci_digits:  # fixed decimals would print 0.000 [0.00, 0.00]
            value_format, ci_format = f".{self.digits}g", f".{self.ci_digits}g"
        elif magnitude >= 1e6:  # e.g. FID from random stand-in weights
            value_format, ci_format = f".{self.digits}e", f".{self.ci_digits}e"
        else:
            value_format, ci_format = f".{self.digits}f", f".{self.ci_digits}f"
        shown = format(self.value, value_format)
        if _finite(self.low) and _finite(self.high):
            shown += f" [{format(self.low, ci_format)}, {format(self.high, ci_format)}]"
        return shown


@dataclass(frozen=True)
class Column:
    key: str  # CSV name
    header: str  # Markdown/LaTeX header


@dataclass
class Table:
    name: str  # file stem
    title: str
    columns: list[Column]
    rows: list[list[str | Cell]] = field(default_factory=list)
    caption: str = ""

    def add(self, *cells: str | Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.name}: row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def notes(self) -> list[str]:
        """Distinct notes in reading order; note k is shown as ``[k]`` in its cells."""
        seen: dict[str, None] = {}
        for row in self.rows:
            for cell in row:
                if isinstance(cell, Cell) and cell.note:
                    seen.setdefault(cell.note, None)
        return list(seen)

    def _shown(self, cell: str | Cell, numbers: dict[str, int]) -> str:
        if not isinstance(cell, Cell):
            return str(cell)
        shown = cell.display()
        return f"{shown} [{numbers[cell.note]}]" if cell.note else shown

    def display_rows(self) -> list[list[str]]:
        numbers = {note: k for k, note in enumerate(self.notes(), start=1)}
        return [[self._shown(cell, numbers) for cell in row] for row in self.rows]

    def numeric_columns(self) -> list[bool]:
        return [any(isinstance(row[i], Cell) for row in self.rows) for i in range(len(self.columns))]

    # --- renderers -------------------------------------------------------------------------------------
    def to_markdown(self, *, heading: bool = False) -> str:
        lines = [f"### {self.title}", ""] if heading else []
        numeric = self.numeric_columns()
        lines.append("| " + " | ".join(_md_escape(c.header) for c in self.columns) + " |")
        lines.append("|" + "|".join("---:" if num else ":---" for num in numeric) + "|")
        for row in self.display_rows():
            lines.append("| " + " | ".join(_md_escape(text) for text in row) + " |")
        notes = self.notes()
        if notes or self.caption:
            lines.append("")
        if self.caption:
            lines.append(self.caption)
            lines.append("")
        for k, note in enumerate(notes, start=1):
            lines.append(f"- [{k}] {note}")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        numeric = self.numeric_columns()
        header: list[str] = []
        for column, num in zip(self.columns, numeric):
            header += [column.key, f"{column.key}_ci_low", f"{column.key}_ci_high"] if num else [column.key]
        header.append("notes")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in self.rows:
            out: list[str] = []
            notes = []
            for column, cell, num in zip(self.columns, row, numeric):
                if not num:
                    out.append(str(cell))
                    continue
                if not isinstance(cell, Cell):
                    cell = Cell(text=str(cell))
                out += [_num(cell.value), _num(cell.low), _num(cell.high)]
                if cell.note and cell.note not in notes:
                    notes.append(cell.note)
            out.append("; ".join(notes))
            writer.writerow(out)
        return buffer.getvalue()

    def to_latex(self) -> str:
        numeric = self.numeric_columns()
        spec = " ".join("r" if num else "l" for num in numeric)
        lines = [f"% {self.title}", f"\\begin{{tabular}}{{{spec}}}", "\\hline",
                 " & ".join(tex_escape(c.header) for c in self.columns) + r" \\", "\\hline"]
        for row in self.display_rows():
            lines.append(" & ".join(tex_escape(text) for text in row) + r" \\")
        lines += ["\\hline", "\\end{tabular}"]
        notes = self.notes()
        if notes:
            lines.append("\\par\\smallskip{\\footnotesize")
            lines += [f"[{k}] {tex_escape(note)}\\\\" for k, note in enumerate(notes, start=1)]
            lines.append("}")
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> dict[str, Path]:
        """``<name>.md``, ``.csv``, ``.tex`` in ``folder`` (atomic); returns them by format."""
        folder = Path(folder)
        paths = {"md": folder / f"{self.name}.md", "csv": folder / f"{self.name}.csv",
                 "tex": folder / f"{self.name}.tex"}
        atomic_write_bytes(paths["md"], self.to_markdown(heading=True).encode("utf-8"))
        atomic_write_bytes(paths["csv"], self.to_csv().encode("utf-8"))
        atomic_write_bytes(paths["tex"], self.to_latex().encode("utf-8"))
        return paths


def _num(value) -> str:
    return f"{value:.10g}" if _finite(value) else ""


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---", "–": "--", "↓": r"$\downarrow$",
    "↑": r"$\uparrow$", "λ": r"$\lambda$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "·": r"$\cdot$",
    "≈": r"$\approx$", "±": r"$\pm$",
}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(char, char) for char in str(text))
