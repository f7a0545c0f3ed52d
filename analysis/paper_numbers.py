"""The paper's reported numbers (sms-spec §9–§10), kept as reference rows beside the suite's own.

Keyed by row label: in Table 1 and the ablation a run tagged ``tables: {<table>: <label>}`` in params.yaml
gets the numbers under its label beside its own, and labels no run carries become paper-only rows (methods
the suite does not run); the main table lists every paper row below the suite's.

Table 1 runtimes come from the supplement [supp]; the main and ablation tables from a secondary summary
[notes] that nobody here has checked against the paper, hence the row label ``paper [notes, unverified]``.
The paper's FID is the art-tuned one inside ArtFID — (1 + LPIPS)(1 + FID) = ArtFID holds on every row —
so the report places it under the suite's ``fid_art`` column, not under plain ``fid``.
"""
from __future__ import annotations

SOURCE_TABLE1 = "paper [supp Table 1, L40]"
SOURCE_NOTES = "paper [notes, unverified]"
SOURCE_FEEDFORWARD = "paper [feed-forward table, as quoted in issue 14, unverified]"

# Table 1: seconds per image on an L40. Two-stage methods give "stage1+stage2"; the total is what we compare.
RUNTIME_S_PER_IMAGE: dict[str, tuple[str, float]] = {
    "SMS": ("87.582", 87.582),
    "DDS": ("31.716", 31.716),
    "FreeStyle": ("28.136", 28.136),
    "StyleID": ("6.553+2.683", 6.553 + 2.683),
    "InstantStyle+": ("23.688+18.375", 23.688 + 18.375),
    "Style-LoRA": ("2.323", 2.323),
}

# Main table (content from DIV2K): LPIPS↓ / FID↓ (art-tuned, inside ArtFID) / ArtFID↓ / PickScore↑.
MAIN: dict[str, dict[str, float]] = {
    name: dict(zip(("lpips", "fid_art", "artfid", "pickscore"), values))
    for name, values in {
        "FreeStyle": (0.690, 12.361, 22.582, 0.683),
        "StyleID": (0.608, 19.007, 32.169, 0.405),
        "InstantStyle+": (0.538, 14.949, 24.532, 1.019),
        "Style-LoRA": (0.438, 12.267, 19.077, 2.067),
        "DDS": (0.513, 15.233, 24.554, 0.537),
        "SMS": (0.326, 13.089, 18.686, 1.487),
    }.items()
}

# Ablation table, LPIPS↓ / ArtFID↓.
ABLATION: dict[str, dict[str, float]] = {
    "style matching only": {"lpips": 0.703, "artfid": 26.403},
    "+ PSR": {"lpips": 0.505, "artfid": 24.132},
    "+ SAGR": {"lpips": 0.536, "artfid": 27.514},
    "full (SMS)": {"lpips": 0.326, "artfid": 18.686},
    "uniform t": {"lpips": 0.389, "artfid": 32.936},
    "linear-annealed t": {"lpips": 0.408, "artfid": 23.524},
}

# Feed-forward generators (one ~43 MB network per style, trained with each method's loss), LPIPS↓ / ArtFID↓.
# Scenimefy is a paper-only row: the suite does not run it.
FEEDFORWARD: dict[str, dict[str, float]] = {
    "Scenimefy": {"lpips": 0.422, "artfid": 18.561},
    "DDS": {"lpips": 0.321, "artfid": 18.338},
    "PDS": {"lpips": 0.427, "artfid": 24.590},
    "SMS": {"lpips": 0.268, "artfid": 17.079},
}
