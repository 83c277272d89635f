#!/usr/bin/env bash
# The prepared device check for a session with a lent GPU, short enough for one call (about 8
# minutes with the defaults) so that the device time goes to measuring, not to setting up.
#
# Here:   cargo build --release --features cuda && mkdir -p gpu && cp target/release/scoregen gpu/
#         cp ../shared/data/mnist/*.gz gpu/      (gpu/ is ignored by git; carry it)
# There:  bench/gpu-check.sh                      (writes everything under $OUT)
#
# 1. the machine (nvidia-smi); 2. the convolution kernels (SCOREGEN_CUDA_CONV = direct, cmma,
# mma; src/cuda_conv.rs): the U-Net training step at batch 64 and the first training losses with
# each, and the fastest whose losses agree with the direct kernels' is used from then on; 3.
# `scoregen bench` and bench/torch_bench.py side by side, f32 and bf16 (bench/run.sh, one round
# each); 4. MNIST: a class-conditional U-Net trained on 8 000 digits for MINUTES minutes
# (docs/mnist-gpu.toml, PRECISION), the evaluation classifier, 300 samples and `scoregen eval`
# (class accuracy, FID in classifier features); 5. LArTPC generation speed (issue 5's ≥ 1000×):
# events simulated, a generator of docs/physics-gpu.toml's size trained a few steps (its speed per
# event does not depend on its training), then 1 000 events with Heun-25 (`--class data`), timed.
# Each step's log is kept; a failed step does not stop the later ones.
#
# Environment: SCOREGEN (default gpu/scoregen), MNIST (default gpu), OUT (default gpu-out),
# DEVICE (default cuda), MINUTES (default 4), PRECISION (default bf16), PYTHON (default python3),
# BATCHES (default 1,16,64,256), CONVS (default "direct cmma mma"; one value skips the choice),
# PARTS (default "conv bench mnist physics": which of steps 2–5 run, so that the device time can
# be split over two calls, e.g. PARTS="conv physics" then CONVS=<the choice> PARTS="bench mnist"),
# SMOKE=1 (a few steps of everything, to try the script on a CPU).
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
part() { # part NAME: whether NAME is among $PARTS
  [[ " ${PARTS:-conv bench mnist physics} " == *" $1 "* ]]
}

if [ "${SMOKE:-0}" = 1 ]; then
  bench_args=(--suite unet --batches 2 --sample-batches 2 --samplers ddim --steps 2
    --nfe-sweep '' --repeats 1 --warmup 0)
  probe_args=("${bench_args[@]}")
  train_args=(--steps 3)
  clf_steps=5
  num=20
  ddim=2
  events=40
  gen_num=8
  gen_steps=2
else
  bench_args=(--suite all --batches "$batches" --sample-batches 16,256 --samplers ddpm,ddim,pc,ode
    --steps 10 --nfe-sweep 10,100 --repeats 3)
  probe_args=(--suite unet --batches 64 --sample-batches 64 --samplers ddim --steps 10
    --nfe-sweep '' --repeats 3)
  train_args=(--minutes "$minutes")
  clf_steps=800
  num=300
  ddim=50
  events=2000
  gen_num=1000
  gen_steps=20
fi
data="idx:$mnist/t10k-images-idx3-ubyte.gz,$mnist/t10k-labels-idx1-ubyte.gz"

command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

# The convolution kernels: each choice's U-Net training step (batch 64) and its first losses on
# the same seed; a choice counts only if its first loss is within 1 % of the direct kernels'.
read -r -a convs <<<"${CONVS:-direct cmma mma}"
if [ "${#convs[@]}" -gt 1 ] && part conv; then
  for c in "${convs[@]}"; do
    export SCOREGEN_CUDA_CONV=$c
    step "conv-$c-bench" "$sg" bench --device "$device" "${probe_args[@]}" --json "$out/conv-$c.json"
    rm -rf "$out/conv-$c-train"
    step "conv-$c-train" "$sg" train --data "$data" --first 512 --class-conditional \
      --config "$here/../docs/mnist-gpu.toml" --steps 5 --seed 1 --device "$device" \
      --out "$out/conv-$c-train"
  done
  best=$("$python" - "$out" "${convs[@]}" <<'PY'
import json, sys
out, convs = sys.argv[1], sys.argv[2:]
def loss(c):
    try:
        return float(open(f"{out}/conv-{c}-train/loss.csv").read().splitlines()[1].split(",")[1])
    except (OSError, IndexError, ValueError):
        return None
def step_ms(c):
    try:
        recs = json.load(open(f"{out}/conv-{c}.json"))["records"]
        return min(r["median_ms"] for r in recs if r["what"] == "train_step")
    except (OSError, ValueError, KeyError):
        return None
ref = loss("direct")
rows = []
for c in convs:
    l, ms = loss(c), step_ms(c)
    ok = l is not None and ms is not None and (ref is None or abs(l - ref) <= 0.01 * abs(ref))
    rows.append((c, l, ms, ok))
    print(f"conv {c}: first loss {l}, U-Net training step {ms} ms, {'agrees' if ok else 'REJECTED'}",
          file=sys.stderr)
good = [r for r in rows if r[3]]
print(min(good, key=lambda r: r[2])[0] if good else "direct")
PY
  )
  export SCOREGEN_CUDA_CONV=$best
  echo "== convolution kernels chosen: $best" | tee "$out/conv.txt"
else
  export SCOREGEN_CUDA_CONV=${convs[0]}
fi

part bench && for p in f32 bf16; do
  step "bench-$p" env SCOREGEN="$sg" PYTHON="$python" OUT_DIR="$out/bench-$p" RUNS=1 \
    "$here/run.sh" --device "$device" "${bench_args[@]}" --precision "$p"
done
part bench && [ -f "$out/bench-f32/table.md" ] && [ -f "$out/bench-bf16/table.md" ] &&
  "$python" "$here/compare.py" "$out"/bench-f32/*.json "$out"/bench-bf16/*.json >"$out/bench.md" &&
  cat "$out/bench.md"

if part mnist; then
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
fi

# LArTPC generation speed: events/s of the generator (the sample step prints samples/s) against
# the simulator's events/s (printed by simulate).
if part physics; then
  rm -rf "$out/gen"
  step physics-simulate "$sg" physics simulate --num "$events" --out "$out/events.npy"
  step physics-train "$sg" train --data "npy:$out/events.npy,$out/events-labels.npy" \
    --class-conditional --config "$here/../docs/physics-gpu.toml" --steps "$gen_steps" \
    --device "$device" --out "$out/gen"
  step physics-sample "$sg" sample --checkpoint "$out/gen" --num "$gen_num" --sampler heun \
    --steps 25 --class data --device "$device" --out "$out/generated.npy"
  step physics-sample-bf16 "$sg" sample --checkpoint "$out/gen" --num "$gen_num" --sampler heun \
    --steps 25 --class data --precision bf16 --device "$device" --out "$out/generated-bf16.npy"
fi
exit $status
