#!/usr/bin/env bash
# The GPU measurements in one command, for whoever has a CUDA GPU (under 8 minutes, each case with its
# own time limit, so one that hangs or runs long does not take the others with it):
#   1. gpu_train.py at the protocol's sizes: step cost and host syncs (benchmarks/results/gpu_train/);
#   2. speed.py's cost table for float32, tf32, bfloat16 and auto, and bfloat16 compiled (CUDA graphs)
#      (benchmarks/results/gpu_speed/);
#   3. the fast preset end to end on the bunny, float32, auto and auto compiled (gpu_speed_fast/);
#   4. the quality preset's 100k steps on the bunny in float32, tf32 and bfloat16 (gpu_speed_quality/),
#      with 2 point sets of 1M instead of 10 so that labelling (on the CPU) fits the time limit;
#   5. the same compiled, tf32 and bfloat16 (gpu_speed_quality_compiled/).
#
#   bash benchmarks/gpu_check.sh                 # on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --quick --out DIR   # a dry run at small sizes on any device (tests run it)
#
# It uses .venv if there is one, else PYTHON (default python3); where sape_geom does not import, it
# creates .venv and installs the package with the benchmark extra (torch from PyPI: the CUDA build on Linux).
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
OUT=benchmarks/results
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT="$2"; shift ;;
    *) echo "gpu_check.sh: unknown option $1 (use --quick, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! "$PY" -c "import sape_geom, torch" 2>/dev/null; then
  echo "gpu_check: installing into .venv" >&2
  python3 -m venv .venv && PY=.venv/bin/python
  timeout 240 "$PY" -m pip install --quiet torch && timeout 240 "$PY" -m pip install --quiet -e ".[meshlab,bench]" \
    || { echo "gpu_check: the install failed" >&2; exit 2; }
fi
mkdir -p "$OUT"
"$PY" -c "import torch; print('gpu_check: torch', torch.__version__, 'CUDA', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

FAILED=0
run_case() {  # run_case NAME SECONDS COMMAND...
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS
  echo "gpu_check: $name (limit ${limit} s)" >&2
  timeout --kill-after=10 "$limit" "$@"
  local code=$?
  echo "gpu_check: $name exit $code in $((SECONDS - start)) s" >&2
  [ $code -eq 0 ] || FAILED=$((FAILED + 1))
}

if [ $QUICK -eq 1 ]; then
  run_case "step cost (quick)" 120 "$PY" benchmarks/gpu_train.py --quick --steps 40 --only ff
  run_case "speed (quick)" 240 "$PY" benchmarks/speed.py --quick --variants float32,auto,float32+compile --e2e float32 \
    --out "$OUT" --name gpu_speed
else
  run_case "step cost" 45 "$PY" benchmarks/gpu_train.py --write
  run_case "cost per precision" 60 "$PY" benchmarks/speed.py --variants float32,tf32,bfloat16,auto,bfloat16+compile \
    --e2e "" --out "$OUT" --name gpu_speed
  run_case "fast preset end to end" 110 "$PY" benchmarks/speed.py --variants float32 --e2e float32,auto,auto+compile \
    --meshes bunny --out "$OUT" --name gpu_speed_fast
  run_case "quality preset, bunny" 150 "$PY" benchmarks/speed.py --preset quality --meshes bunny --sets 2 \
    --variants float32 --e2e float32,tf32,bfloat16 --out "$OUT" --name gpu_speed_quality
  run_case "quality preset compiled, bunny" 110 "$PY" benchmarks/speed.py --preset quality --meshes bunny --sets 2 \
    --variants float32 --e2e tf32+compile,bfloat16+compile --out "$OUT" --name gpu_speed_quality_compiled
fi
echo "gpu_check: $FAILED case(s) failed; results under $OUT" >&2
[ $FAILED -eq 0 ]
