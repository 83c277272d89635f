#!/usr/bin/env bash
# One command, one machine: scoregen and PyTorch (eager; add COMPILE=1 for torch.compile too)
# on the same networks, losses and samplers, RUNS times each, alternating, then the table.
#
#   bench/run.sh --device cpu --batches 1,16,64,256 --sample-batches 1,16 --repeats 3
#
# Every argument goes to both `scoregen bench` and bench/torch_bench.py (same flags).
# SCOREGEN (default target/release/scoregen), PYTHON (default python3), OUT_DIR (default
# bench-out) and RUNS (default 2) are read from the environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scoregen="${SCOREGEN:-target/release/scoregen}"
python="${PYTHON:-python3}"
out="${OUT_DIR:-bench-out}"
runs="${RUNS:-2}"
mkdir -p "$out"
files=()
for i in $(seq 1 "$runs"); do
  "$scoregen" bench "$@" --json "$out/scoregen-$i.json"
  files+=("$out/scoregen-$i.json")
  "$python" "$here/torch_bench.py" "$@" --json "$out/pytorch-$i.json"
  files+=("$out/pytorch-$i.json")
  if [ "${COMPILE:-0}" = 1 ]; then
    "$python" "$here/torch_bench.py" --compile "$@" --json "$out/pytorch-compile-$i.json"
    files+=("$out/pytorch-compile-$i.json")
  fi
done
"$python" "$here/compare.py" "${files[@]}" | tee "$out/table.md"
