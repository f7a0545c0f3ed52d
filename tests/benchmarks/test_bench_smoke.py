"""The benchmark script runs end to end on the tiny models and its table says what the suite promises:
SMS's reference order spends 8 UNet forward rows per iteration and the batched fast path 7, the fast
path's fp32 gradient matches the reference's, and the FLOP floor is printed."""
from __future__ import annotations

import re

import pytest

from benchmarks import bench_methods

HEADER = ("| method | variant | s/iter | forwards/iter | peak GB | s/image (N=500 extrapolated) | "
          "speed-up vs reference order | backward/iter | grad err | tol | check | floor s/iter | measured/floor |")


def _rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    columns = [c.strip() for c in HEADER.strip("|").split("|")]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == len(columns) and cells[0] not in ("method",):
            rows[(cells[0], cells[1])] = dict(zip(columns, cells))
    return rows


@pytest.mark.timeout(120)
def test_bench_table_on_tiny(capsys, tmp_path):
    out = tmp_path / "table.md"
    code = bench_methods.main(["--methods", "sms,dds", "--iters", "1", "--warmup", "0",
                               "--variants", "reference,batched", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert HEADER in text
    rows = _rows(text)
    assert set(rows) == {("sms", "reference"), ("sms", "batched"), ("dds", "default")}, text

    # SMS: style CFG 2 + fake CFG 2 + relevance 2 + fake update 1; the reference adds the wasted uncond row
    assert float(rows["sms", "reference"]["forwards/iter"]) == 8
    assert float(rows["sms", "batched"]["forwards/iter"]) == 7
    assert float(rows["dds", "default"]["forwards/iter"]) == 4
    # one backward pass through the UNet per SMS iteration (the fake-LoRA update), none for DDS
    assert rows["sms", "batched"]["backward/iter"] == "1"
    assert rows["sms", "reference"]["backward/iter"].startswith("1")
    assert rows["dds", "default"]["backward/iter"] == "0"
    assert rows["sms", "reference"]["speed-up vs reference order"] == "1.00×"
    peak = rows["sms", "batched"]["peak GB"]  # CPU: the process's peak resident set, > 0 and < 64 GB
    assert peak.endswith(" RSS") and 0.05 < float(peak.split()[0]) < 64, peak

    batched = rows["sms", "batched"]
    assert float(batched["grad err"]) < 1e-4 and batched["check"] == "PASS", batched
    assert rows["sms", "reference"]["grad err"] == "0 (ref)"

    floor = re.search(r"^FLOP floor: F = ([0-9.]+) GFLOP", text, re.MULTILINE)
    assert floor and float(floor.group(1)) > 0, text
    for row in rows.values():
        assert float(row["floor s/iter"]) > 0 and float(row["measured/floor"].rstrip("×")) > 0

    assert out.read_text().strip() == text.strip()  # --out writes the same Markdown
