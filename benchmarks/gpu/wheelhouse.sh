#!/usr/bin/env bash
# Run on a machine WITH package-registry access, from the repo root: fills .wheelhouse/ (git-ignored) with
# the wheels benchmarks/bench_methods.py needs that the offline GPU image lacks, pinned by constraints.txt.
# The GPU image has torch, torchvision, transformers, huggingface_hub, safetensors, tokenizers, accelerate,
# peft, numpy, pillow, scipy, pyyaml (and their deps); it lacks diffusers and open_clip_torch (the SD CLIP
# tokenizer's vocabulary, sms/models/tokenizer.py). run.sh installs only what is missing, so the extra
# dependency wheels below are a safety net, not upgrades.
#   bash benchmarks/gpu/wheelhouse.sh                      # Python 3.12 (the GPU image)
#   PY_VERSIONS="3.12 3.11" bash benchmarks/gpu/wheelhouse.sh   # also for a local 3.11 rehearsal
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/work/venv/bin/python}
[ -x "$PY" ] || PY=python3
PIP_VERSION=26.3   # not in constraints.txt; carried so the wheels install even where the venv has no pip
PACKAGES="diffusers importlib_metadata zipp lazy-importer open_clip_torch timm ftfy wcwidth peft
          requests urllib3 idna certifi charset-normalizer regex filelock"

pins=("pip==$PIP_VERSION")
for p in $PACKAGES; do   # names compared PEP 503-normalised: open_clip_torch == open-clip-torch
  pin=$(awk -v want="$p" 'function norm(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s }
        split($0, a, "==") == 2 && norm(a[1]) == norm(want) { print a[1] "==" a[2] }' constraints.txt)
  [ -n "$pin" ] || { echo "no pin for $p in constraints.txt" >&2; exit 1; }
  pins+=("$pin")
done
mkdir -p .wheelhouse
for py in ${PY_VERSIONS:-3.12}; do
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$py" -d .wheelhouse "${pins[@]}"
done
printf '%s\n' "${pins[@]}" > .wheelhouse/requirements.txt
ls -l .wheelhouse && du -sh .wheelhouse
"$PY" - <<'PYEOF'  # what the carried wheels require but do not carry: the image must have these
import glob, zipfile
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
env = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix", "extra": ""}
carried, needed = set(), set()
for wheel in glob.glob(".wheelhouse/*.whl"):
    carried.add(canonicalize_name(wheel.split("/")[-1].split("-")[0]))
    with zipfile.ZipFile(wheel) as z:
        text = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1])
            if req.marker is None or req.marker.evaluate(env):
                needed.add(canonicalize_name(req.name))
print("expected in the GPU image (not carried):", " ".join(sorted(needed - carried)))
PYEOF
