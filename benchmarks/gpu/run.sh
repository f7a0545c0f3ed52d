#!/usr/bin/env bash
# Run ON the offline GPU machine from the repo root, with .wheelhouse/ carried (see README.md here):
#   bash benchmarks/gpu/run.sh [STAGE ...]        STAGE: tiny core sms baselines compile (default: core)
#   tiny       tiny models on the CPU (the default bench)       core  full size, every method
#   sms        full size, SMS only    baselines  full size, every other method
#   compile    full size, SMS: its reference row + the torch.compile variants (compiling takes minutes)
# Writes $OUT/env.txt, and per stage $OUT/<stage>.md (the table) and $OUT/<stage>.log (stdout+stderr);
# a stage that fails or is cut off by the time limit leaves the earlier stages' files in place.
# Overrides (e.g. a CPU smoke test: DEVICE=cpu MODEL=tiny ITERS=1 WARMUP=0 bash benchmarks/gpu/run.sh core):
#   PYTHON OUT DEVICE MODEL RESOLUTION ITERS WARMUP METHODS EXTRA_ARGS (extra bench flags, word-split)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3} OUT=${OUT:-./bench-out}
DEVICE=${DEVICE:-cuda} MODEL=${MODEL:-sd15-random} RESOLUTION=${RESOLUTION:-}
[ -n "$RESOLUTION" ] || [ "$MODEL" = tiny ] || RESOLUTION=512  # tiny: the bench's own 64
ITERS=${ITERS:-10} WARMUP=${WARMUP:-2} METHODS=${METHODS:-} EXTRA_ARGS=${EXTRA_ARGS:-}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
for stage in "${@:-core}"; do case $stage in tiny|core|sms|baselines|compile) ;;
  *) echo "unknown stage: $stage (tiny core sms baselines compile)" >&2; exit 2 ;; esac; done
mkdir -p "$OUT"

# 1. Add what the image lacks from the carried wheels: diffusers, open_clip_torch (the CLIP vocabulary), and
#    any of their dependencies that are missing. Installed packages are kept (peft only if older than
#    pyproject's floor), never downgraded.
if ! "$PYTHON" -c "import diffusers, open_clip, peft" 2>/dev/null; then
  [ -f .wheelhouse/requirements.txt ] || { echo "no .wheelhouse: run wheelhouse.sh, carry .wheelhouse" >&2; exit 2; }
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then pip=("$PYTHON" -m pip)
  else pip=("$PYTHON" "$(ls .wheelhouse/pip-*.whl | head -1)/pip"); fi  # a venv without pip (uv)
  wanted=$(grep -E '^(diffusers|open_clip_torch)==' .wheelhouse/requirements.txt | tr '\n' ' ')
  # shellcheck disable=SC2086
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null "${pip[@]}" install --no-index \
    --find-links .wheelhouse --root-user-action=ignore --disable-pip-version-check $wanted "peft>=0.15" \
    | { grep -v "already satisfied" || true; }
fi

# 2. What ran where.
{ if command -v nvidia-smi >/dev/null; then nvidia-smi -L 2>&1 || true; else echo "nvidia-smi: none"; fi
  echo "gcc: $(command -v gcc || echo none) (torch.compile/triton needs a C compiler)"
  "$PYTHON" - <<'EOF'
import sys, torch, diffusers, transformers, huggingface_hub, peft, open_clip
print(f"python {sys.version.split()[0]}  torch {torch.__version__} (CUDA {torch.version.cuda}, available: "
      f"{torch.cuda.is_available()}"
      f"{', ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ''})  diffusers "
      f"{diffusers.__version__}  peft {peft.__version__}  transformers {transformers.__version__}  "
      f"huggingface_hub {huggingface_hub.__version__}  open_clip {open_clip.__version__}")
EOF
} | tee "$OUT/env.txt"

# 3. The stages; each is a separate bench run so each fits one 10-minute call.
full=(--model "$MODEL" --device "$DEVICE" ${RESOLUTION:+--resolution "$RESOLUTION"} --iters "$ITERS" --warmup "$WARMUP")
others() {  # every registered method but sms, as the bench registers them
  "$PYTHON" -c "import sys; sys.path.insert(0, '.'); from sms.method import methods; from workflow.discovery import \
load_methods; load_methods([]); print(','.join(n for n in methods.names() if n != 'sms'))"
}
compiled() {  # sms's torch.compile variants only (the eager rows are in the sms/core tables); '' = all
  "$PYTHON" -c "import sys; sys.path.insert(0, '.'); from benchmarks import variants; \
print(','.join(v.name for v in variants.family('sms') if v.needs_compile))" 2>/dev/null || true
}
status=0
for stage in "${@:-core}"; do
  case $stage in
    tiny) args=(--device cpu) ;;
    core) args=("${full[@]}" ${METHODS:+--methods "$METHODS"}) ;;
    sms) args=("${full[@]}" --methods sms) ;;
    baselines) names=$(others); args=("${full[@]}" --methods "$names") ;;
    compile) names=$(compiled); args=("${full[@]}" --methods sms --compile ${names:+--variants "$names"}) ;;
  esac
  # shellcheck disable=SC2086
  cmd=("$PYTHON" benchmarks/bench_methods.py "${args[@]}" $EXTRA_ARGS --out "$OUT/$stage.md")
  echo "== $stage: ${cmd[*]}" | tee "$OUT/$stage.log"
  start=$SECONDS
  rc=0; "${cmd[@]}" 2>&1 | tee -a "$OUT/$stage.log" || rc=$?
  [ "$rc" -eq 0 ] || status=$rc
  echo "== $stage: exit $rc, $((SECONDS - start)) s" | tee -a "$OUT/$stage.log"
done
exit "$status"
