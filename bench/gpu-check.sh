#!/usr/bin/env bash
# The prepared device check for a session with a lent GPU, short enough for one call (about 8
# minutes with the defaults) so that the device time goes to measuring, not to setting up.
#
# Here:   cargo build --release --features cuda && mkdir -p gpu && cp target/release/scoregen gpu/
#         cp ../shared/data/mnist/*.gz gpu/      (gpu/ is ignored by git; carry it)
# There:  bench/gpu-check.sh                      (writes everything under $OUT)
#
# 1. the machine (nvidia-smi); 2. `scoregen bench` and bench/torch_bench.py side by side, f32 and
# bf16 (bench/run.sh, one round each); 3. MNIST: a class-conditional U-Net trained on 8 000 digits
# for MINUTES minutes (docs/mnist-gpu.toml, PRECISION), the evaluation classifier, 300 samples and
# `scoregen eval` (class accuracy, FID in classifier features). Each step's log is kept; a failed
# step does not stop the later ones.
#
# Environment: SCOREGEN (default gpu/scoregen), MNIST (default gpu), OUT (default gpu-out),
# DEVICE (default cuda), MINUTES (default 4), PRECISION (default bf16), PYTHON (default python3),
# BATCHES (default 1,16,64,256), SMOKE=1 (a few steps of everything, to try the script on a CPU).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sg="${SCOREGEN:-gpu/scoregen}"
mnist="${MNIST:-gpu}"
out="${OUT:-gpu-out}"
device="${DEVICE:-cuda}"
minutes="${MINUTES:-4}"
precision="${PRECISION:-bf16}"
python="${PYTHON:-python3}"
batches="${BATCHES:-1,16,64,256}"
mkdir -p "$out"
status=0
step() { # step NAME COMMAND...: runs it with its output in $out/NAME.log, timed
  local name=$1
  shift
  local t0=$SECONDS
  if "$@" >"$out/$name.log" 2>&1; then
    echo "== $name: ok ($((SECONDS - t0)) s)"
  else
    echo "== $name: FAILED ($((SECONDS - t0)) s), last lines of $out/$name.log:"
    status=1
  fi
  tail -n 4 "$out/$name.log"
}

if [ "${SMOKE:-0}" = 1 ]; then
  bench_args=(--suite unet --batches 2 --sample-batches 2 --samplers ddim --steps 2
    --nfe-sweep '' --repeats 1 --warmup 0)
  train_args=(--steps 3)
  clf_steps=5
  num=20
  ddim=2
else
  bench_args=(--suite all --batches "$batches" --sample-batches 16,256 --samplers ddpm,ddim,pc,ode
    --steps 10 --nfe-sweep 10,100 --repeats 3)
  train_args=(--minutes "$minutes")
  clf_steps=800
  num=300
  ddim=50
fi

command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

for p in f32 bf16; do
  step "bench-$p" env SCOREGEN="$sg" PYTHON="$python" OUT_DIR="$out/bench-$p" RUNS=1 \
    "$here/run.sh" --device "$device" "${bench_args[@]}" --precision "$p"
done
[ -f "$out/bench-f32/table.md" ] && [ -f "$out/bench-bf16/table.md" ] &&
  "$python" "$here/compare.py" "$out"/bench-f32/*.json "$out"/bench-bf16/*.json >"$out/bench.md" &&
  cat "$out/bench.md"

data="idx:$mnist/t10k-images-idx3-ubyte.gz,$mnist/t10k-labels-idx1-ubyte.gz"
rm -rf "$out/mnist" "$out/clf"
step mnist-train "$sg" train --data "$data" --first 8000 --class-conditional \
  --config "$here/../docs/mnist-gpu.toml" --precision "$precision" "${train_args[@]}" \
  --device "$device" --out "$out/mnist"
step mnist-classifier "$sg" classifier --data "$data" --first 8000 --steps "$clf_steps" \
  --device "$device" --out "$out/clf"
step mnist-sample "$sg" sample --checkpoint "$out/mnist" --num "$num" --sampler ddim --steps "$ddim" \
  --class all --guidance 1 --device "$device" --out "$out/fake.npy"
step mnist-grid "$sg" sample --checkpoint "$out/mnist" --num 100 --sampler ddim --steps "$ddim" \
  --class all --guidance 1 --device "$device" --out "$out/grid.png"
step mnist-eval "$sg" eval --real "$data" --fake "npy:$out/fake.npy,$out/fake-labels.npy" \
  --features "$out/clf" --json
exit $status
