#!/usr/bin/env bash
# The GPU checks of DRAW Studio in one go, with one JSON summary (issue 16).
#
#   scripts/gpu-check.sh [--data-dir DIR] [--out SUMMARY.json]
#
# On a machine with an NVIDIA GPU (meant to take under 8 minutes with one GPU; not yet run on one):
#   1. the device-parametrised tests (tests/test_gpu_path.py: CPU, and CUDA / MPS when present): the fast path
#      against plain autograd on the GPU, steps decided on the device, the LSTM cell state under bf16 autocast,
#      the compiled pass checked against the eager pass;
#   2. 20 steps of mnist-paper on cuda with the compiled fast path: its first-step self-check against the
#      eager pass must pass (no "differs from the eager" warning);
#   3. CUDA graphs (--cuda-graphs, experimental): 20 steps of mnist-paper with --cuda-graphs on (its first-step
#      self-check against the eager step must pass: no "CUDA graphs off" warning), and eager vs graphed images/s
#      with the self-check's result (python -m draw_studio.bench.cuda_graphs); without a GPU the graphed step runs
#      without capture on the CPU (tiny preset), which checks the plumbing only;
#   4. a 2-process torchrun run (NCCL) when the machine has two GPUs; else the same run on the CPU (gloo);
#   5. draw-studio bench --json --device cuda --no-gui (and --distributed when there are two GPUs).
# On a machine without a GPU the GPU parts are skipped, each with a line saying so; the rest runs.
# Paste the summary (and the bench lines) into an issue or the README's "Many GPUs and machines" section.
set -u
cd "$(dirname "$0")/.."
DATA_DIR="../shared/data/mnist"
OUT="gpu-check.json"
while [ $# -gt 0 ]; do
    case "$1" in
        --data-dir) DATA_DIR="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1 (use --data-dir DIR, --out FILE)" >&2; exit 2 ;;
    esac
done
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
export QT_QPA_PLATFORM=offscreen

GPUS="$("$PYTHON" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)"
echo "gpu-check: $GPUS CUDA GPU(s); logs in $WORK"

# record NAME STATUS SECONDS DETAIL [JSON-FILE]
record() {
    "$PYTHON" - "$RESULTS" "$@" <<'PY'
import json, sys
path, name, status, seconds, detail = sys.argv[1:6]
entry = {"check": name, "status": status, "seconds": round(float(seconds), 1), "detail": detail}
if len(sys.argv) > 6:
    try:
        entry["result"] = json.loads(open(sys.argv[6]).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        pass
with open(path, "a") as f:
    f.write(json.dumps(entry) + "\n")
PY
    echo "gpu-check: $1: $2 (${3%.*} s) $4"
}

# run NAME LOGFILE COMMAND...: run it, record passed / failed with the last line of its output
run() {
    local name="$1" log="$2"; shift 2
    local start end status
    start=$(date +%s.%N)
    if "$@" > "$log" 2>&1; then status=passed; else status=failed; fi
    end=$(date +%s.%N)
    record "$name" "$status" "$(awk "BEGIN{print $end - $start}")" "$(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-200)"
}

# 1. device-parametrised tests
run "device tests (tests/test_gpu_path.py)" "$WORK/tests.log" "$PYTHON" -m pytest -q -rs tests/test_gpu_path.py

# 2. compiled fast path on the GPU, with its first-step self-check
if [ "$GPUS" -ge 1 ] && [ -d "$DATA_DIR" ]; then
    run "mnist-paper on cuda, compiled, 20 steps" "$WORK/compiled.log" "$PYTHON" -W error::RuntimeWarning -m draw_studio \
        train --preset mnist-paper --data-dir "$DATA_DIR" --no-download --steps 20 --batch-size 64 --seed 1 \
        --device cuda --compile on --cuda-graphs off --no-log --snapshot-every 0 --validate-every 0 --report-every 10 \
        --out "$WORK/compiled.ckpt"
elif [ "$GPUS" -ge 1 ]; then
    record "mnist-paper on cuda, compiled, 20 steps" skipped 0 "no MNIST at $DATA_DIR (pass --data-dir)"
else
    record "mnist-paper on cuda, compiled, 20 steps" skipped 0 "no CUDA GPU on this machine"
fi

# 3. CUDA graphs: a short run that must not fall back, then eager vs graphed images/s and the self-check
# bench NAME JSON-FILE COMMAND...: run it, record passed / failed with its JSON line as the result
bench() {
    local name="$1" json="$2"; shift 2
    local start status
    start=$(date +%s.%N)
    if "$@" > "$json" 2> "$json.log"; then status=passed; else status=failed; fi
    record "$name" "$status" "$(awk "BEGIN{print $(date +%s.%N) - $start}")" \
        "$(grep -v '^\s*$' "$json.log" | tail -n 1 | cut -c1-200)" "$json"
}
if [ "$GPUS" -ge 1 ] && [ -d "$DATA_DIR" ]; then
    run "mnist-paper on cuda, --cuda-graphs on, 20 steps" "$WORK/graphs.log" "$PYTHON" -W error::RuntimeWarning -m draw_studio \
        train --preset mnist-paper --data-dir "$DATA_DIR" --no-download --steps 20 --batch-size 64 --seed 1 \
        --device cuda --cuda-graphs on --no-log --snapshot-every 0 --validate-every 0 --report-every 10 \
        --out "$WORK/graphs.ckpt"
    "$PYTHON" -c "import sys, torch; print(torch.load(sys.argv[1], map_location='cpu', weights_only=True)['extra'].get('cuda_graphs'))" \
        "$WORK/graphs.ckpt" 2>/dev/null | sed 's/^/gpu-check: the checkpoint records cuda_graphs = /'
elif [ "$GPUS" -ge 1 ]; then
    record "mnist-paper on cuda, --cuda-graphs on, 20 steps" skipped 0 "no MNIST at $DATA_DIR (pass --data-dir)"
else
    record "mnist-paper on cuda, --cuda-graphs on, 20 steps" skipped 0 "no CUDA GPU on this machine"
fi
if [ "$GPUS" -ge 1 ]; then
    bench "eager vs CUDA-graphed step, mnist-paper, batch 64 (python -m draw_studio.bench.cuda_graphs)" \
        "$WORK/graphs-bench.json" "$PYTHON" -m draw_studio.bench.cuda_graphs --device cuda --preset mnist-paper \
        --batch 64 --steps 20 --windows 5
else
    bench "graphed step without capture on the CPU, tiny, batch 16 (plumbing only: no CUDA GPU)" \
        "$WORK/graphs-bench.json" "$PYTHON" -m draw_studio.bench.cuda_graphs --device cpu --preset tiny \
        --batch 16 --steps 3 --windows 3 --threads 1 --compile off
fi

# 4. one run on two processes
if [ -d "$DATA_DIR" ]; then
    if [ "$GPUS" -ge 2 ]; then DEVICE=cuda; else DEVICE=cpu; fi
    [ "$GPUS" -lt 2 ] && echo "gpu-check: fewer than two GPUs: the 2-process run trains on the CPU (gloo) instead"
    run "torchrun, 2 processes on $DEVICE, tiny, 20 steps" "$WORK/torchrun.log" "$PYTHON" -m torch.distributed.run \
        --standalone --nproc-per-node=2 -m draw_studio train --preset tiny --data-dir "$DATA_DIR" --no-download \
        --steps 20 --batch-size 16 --seed 3 --device "$DEVICE" --validate-every 10 --validation-limit 64 \
        --report-every 10 --out "$WORK/two.ckpt"
else
    record "torchrun, 2 processes" skipped 0 "no MNIST at $DATA_DIR (pass --data-dir)"
fi

# 5. the bench on the GPU
if [ "$GPUS" -ge 1 ]; then
    EXTRA=""
    [ "$GPUS" -ge 2 ] && EXTRA="--distributed"
    start=$(date +%s.%N)
    if "$PYTHON" -m draw_studio bench --json --device cuda --no-gui $EXTRA > "$WORK/bench.json" 2> "$WORK/bench.log"
    then status=passed; else status=failed; fi
    record "draw-studio bench --json --device cuda --no-gui $EXTRA" "$status" "$(awk "BEGIN{print $(date +%s.%N) - $start}")" \
        "$(tail -n 1 "$WORK/bench.log" | cut -c1-200)" "$WORK/bench.json"
else
    record "draw-studio bench --device cuda" skipped 0 "no CUDA GPU on this machine (draw-studio bench --json measures the CPU)"
fi

"$PYTHON" - "$RESULTS" "$OUT" <<'PY'
import json, platform, sys
import torch
checks = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
summary = {
    "machine": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
    "cuda": torch.version.cuda, "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if torch.cuda.is_available() else [],
    "checks": checks,
    "failed": sum(check["status"] == "failed" for check in checks),
}
with open(sys.argv[2], "w") as f:
    json.dump(summary, f, indent=1)
print(f"gpu-check: summary in {sys.argv[2]}: {len(checks)} checks, {summary['failed']} failed, "
      f"{sum(c['status'] == 'skipped' for c in checks)} skipped")
sys.exit(1 if summary["failed"] else 0)
PY
