#!/usr/bin/env bash
# The prepared device check for a session with a lent GPU: one call, finished by DEADLINE seconds
# (default 540) so that the device time goes to measuring, not to setting up or waiting.
#
# Here:   cargo test --release --features cuda --test cuda_kernels --no-run   (builds both)
#         mkdir -p gpu; cp target/release/scoregen gpu/; cp target/release/deps/cuda_kernels-* gpu/cuda_kernels
#         strip gpu/scoregen gpu/cuda_kernels; gzip -9 gpu/scoregen gpu/cuda_kernels  (the tree that
#         travels is limited to 64 MiB); cp ../shared/data/mnist/*.gz gpu/  (gpu/ ignored; carry it)
#         optionally a trained LArTPC generator and SSNet: gpu/gen/, gpu/ssnet/ (their
#         checkpoint.json + weights, ssnet.json + ssnet.safetensors)
# There:  OUT=/tmp/g bench/gpu-check.sh; tar czf "$REAL_OUT/gpu.tgz" -C /tmp/g --exclude='*.npy' \
#           --exclude='*.safetensors' --exclude=kernels .
#
# Steps, in order of what the open issues need; each is time-limited and skipped when the
# deadline is too near, and a failed step does not stop the later ones:
# 1. the machine (nvidia-smi, PyTorch's version), a one-second CUDA smoke test of the binary,
#    and tests/cuda_kernels.rs (every convolution, forward and gradients, against the CPU; a
#    U-Net's parameter gradients per kernel choice; bf16; GroupNorm), its groups in parallel;
# 2. conv: the convolution kernels (SCOREGEN_CUDA_CONV = mma, direct, cmma, and
#    forward=mma,weight=mma, whose GEMM weight gradient the kernel test checks per parameter;
#    src/cuda_conv.rs). First each choice compiles its kernels in parallel (5 MNIST training
#    steps on one seed, then the U-Net probe, each choice with its own kernel cache), then each
#    probe is timed alone with a warm cache: U-Net training step at batch 64. The fastest choice
#    whose first and fifth losses are within 1 % of the direct kernels' is used from then on;
#    norm: the same probe with GroupNorm as one autodiff node (the default) and composed
#    (SCOREGEN_CUDA_NORM=composed);
# 3. bench: `scoregen bench` and bench/torch_bench.py side by side in f32 (bench/run.sh);
# 4. physics: LArTPC generation speed (issue 5's ≥ 1 000×): the simulator's events/s on one
#    core, then GEN_NUM events from gpu/gen (else a docs/physics-gpu.toml generator trained a
#    few steps: its speed does not depend on its training) with Heun-25 (`--class data`) in f32
#    and bf16, each after an untimed warm-up that compiles the kernels; with gpu/ssnet, the f32
#    events are compared with freshly simulated ones (`physics eval --zero-suppress
#    --per-class --json`, on the CPU);
# 5. profile: one U-Net training step (batch 64) and a DDIM run with cubecl's kernel profiler
#    (every kernel's time, cubecl.log);
# 6. bench-bf16: the side-by-side again in bf16;
# 7. mnist (only when PARTS names it): 4 minutes of docs/mnist-gpu.toml, classifier, samples, eval.
#
# Environment: SCOREGEN (default gpu/scoregen), MNIST (default gpu), GEN (default gpu/gen), SSNET
# (default gpu/ssnet), OUT (default gpu-out), DEVICE (default cuda), DEADLINE (default 540),
# MINUTES (default 4), PRECISION (default bf16), PYTHON (default python3), BATCHES (default
# 1,16,64,256), CONVS (default "mma direct cmma forward=mma,weight=mma"; one value skips the
# choice), GEN_NUM (default 1000), PARTS (default "conv norm bench physics profile bench-bf16"),
# SMOKE=1 (a few steps of everything, to try the script on a CPU).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sg="${SCOREGEN:-gpu/scoregen}"
kernels_test="${KERNELS_TEST:-gpu/cuda_kernels}"
mnist="${MNIST:-gpu}"
gen="${GEN:-gpu/gen}"
ssnet="${SSNET:-gpu/ssnet}"
out="${OUT:-gpu-out}"
device="${DEVICE:-cuda}"
deadline="${DEADLINE:-540}"
minutes="${MINUTES:-4}"
precision="${PRECISION:-bf16}"
python="${PYTHON:-python3}"
batches="${BATCHES:-1,16,64,256}"
gen_num="${GEN_NUM:-1000}"
mkdir -p "$out"
# Binaries carried gzipped (see above) are unpacked into a temporary folder (not into the
# output, which comes back).
bin=$(mktemp -d)
for v in sg kernels_test; do
  if [ ! -e "${!v}" ] && [ -e "${!v}.gz" ]; then
    gzip -dc "${!v}.gz" >"$bin/$(basename "${!v}")" && chmod +x "$bin/$(basename "${!v}")"
    printf -v "$v" '%s' "$bin/$(basename "${!v}")"
  fi
done
cache="$out/kernels"
status=0
step() { # step NAME LIMIT COMMAND...: runs it, output in $out/NAME.log, at most LIMIT seconds
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 15 ]; then
    echo "== $name: skipped (deadline, $SECONDS s)"
    status=1
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$SECONDS
  if timeout "$limit" "$@" >"$out/$name.log" 2>&1; then
    echo "== $name: ok ($((SECONDS - t0)) s, at $SECONDS s)"
    tail -n 2 "$out/$name.log"
  else
    echo "== $name: FAILED or cut at $limit s ($((SECONDS - t0)) s, at $SECONDS s):"
    tail -n 4 "$out/$name.log"
    status=1
    return 1
  fi
}
part() { # part NAME: whether NAME is among $PARTS
  [[ " ${PARTS:-conv norm bench physics profile bench-bf16} " == *" $1 "* ]]
}

if [ "${SMOKE:-0}" = 1 ]; then
  probe_args=(--suite unet --batches 2 --sample-batches 2 --samplers ddim --steps 2
    --nfe-sweep '')
  bench_args=("${probe_args[@]}" --repeats 1 --warmup 0)
  train_args=(--steps 3)
  clf_steps=5
  num=20
  ddim=2
  gen_num=8
  gen_batch=8
  gen_steps=2
  heun=2
else
  bench_args=(--suite all --batches "$batches" --sample-batches 16,128 --samplers ddpm,ddim,pc,ode
    --steps 10 --nfe-sweep 10,100 --repeats 3)
  probe_args=(--suite unet --batches 64 --sample-batches 64 --samplers ddim --steps 10
    --nfe-sweep '')
  train_args=(--minutes "$minutes")
  clf_steps=800
  num=300
  ddim=50
  gen_batch=500
  gen_steps=20
  heun=25
fi
data="idx:$mnist/t10k-images-idx3-ubyte.gz,$mnist/t10k-labels-idx1-ubyte.gz"

command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
"$python" -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())' |
  tee -a "$out/gpu.txt"
nproc | tee -a "$out/gpu.txt"
step smoke 60 "$sg" bench --device "$device" --suite mlp --mlp-batch 64 --samplers '' \
  --nfe-sweep '' --repeats 1 --warmup 0 || exit 1
# tests/cuda_kernels.rs, its five groups side by side (kernel compilation is the CPU's work):
# every convolution's passes against the CPU, a U-Net's gradients per kernel choice, bf16,
# GroupNorm's one-node backward.
if [ -x "$kernels_test" ]; then
  for t in convolutions_and convolutions_of unet_gradients bf16 group_norm; do
    SCOREGEN_KERNEL_CACHE=$cache/test-$t step "kernels-test-$t" 200 \
      "$kernels_test" "$t" --test-threads 1 --nocapture &
  done
  wait
  for t in convolutions_and convolutions_of unet_gradients bf16 group_norm; do
    grep -q "^test result: ok" "$out/kernels-test-$t.log" || status=1
  done
fi

# The convolution kernels: compile in parallel, then time one at a time.
read -r -a convs <<<"${CONVS:-mma direct cmma forward=mma,weight=mma}"
if [ "${#convs[@]}" -gt 1 ] && part conv; then
  # The first losses of 5 steps, without the sample grid a checkpoint would draw.
  sed 's/^sample_grid = .*/sample_grid = 0/' "$here/../docs/mnist-gpu.toml" >"$out/probe.toml"
  for c in "${convs[@]}"; do
    (
      export SCOREGEN_CUDA_CONV=$c SCOREGEN_KERNEL_CACHE=$cache/$c
      rm -rf "$out/conv-$c-train"
      step "conv-$c-train" 150 "$sg" train --data "$data" --first 512 --class-conditional \
        --config "$out/probe.toml" --steps 5 --seed 1 --device "$device" \
        --out "$out/conv-$c-train"
      step "conv-$c-compile" 150 "$sg" bench --device "$device" "${probe_args[@]}" --repeats 1 \
        --warmup 0
    ) &
  done
  wait
  for c in "${convs[@]}"; do
    SCOREGEN_CUDA_CONV=$c SCOREGEN_KERNEL_CACHE=$cache/$c step "conv-$c-bench" 60 "$sg" bench \
      --device "$device" "${probe_args[@]}" --repeats 3 --json "$out/conv-$c.json"
  done
  best=$("$python" - "$out" "${convs[@]}" <<'PY'
import json, sys
out, convs = sys.argv[1], sys.argv[2:]
def loss(c):
    """The first and the fifth training loss."""
    try:
        rows = open(f"{out}/conv-{c}-train/loss.csv").read().splitlines()
        return float(rows[1].split(",")[1]), float(rows[5].split(",")[1])
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
    ok = l is not None and ms is not None and (
        ref is None or all(abs(a - b) <= 0.01 * abs(b) for a, b in zip(l, ref)))
    rows.append((c, l, ms, ok))
    print(f"conv {c}: first and fifth loss {l}, U-Net training step {ms} ms, {'agrees' if ok else 'REJECTED'}",
          file=sys.stderr)
good = [r for r in rows if r[3]]
print(min(good, key=lambda r: r[2])[0] if good else "direct")
PY
  )
  echo "== convolution kernels chosen: $best" | tee "$out/conv.txt"
else
  best=${convs[0]}
fi
export SCOREGEN_CUDA_CONV=$best SCOREGEN_KERNEL_CACHE=$cache/$best

# GroupNorm as one autodiff node (the default, src/nn/norm_node.rs) against the composed
# version: the same probe, timed both ways.
if part norm; then
  for norm in node composed; do
    SCOREGEN_CUDA_NORM=$norm step "norm-$norm" 90 "$sg" bench --device "$device" \
      "${probe_args[@]}" --repeats 3 --json "$out/norm-$norm.json"
  done
fi

side_by_side() { # side_by_side PRECISION LIMIT
  step "bench-$1" "$2" env SCOREGEN="$sg" PYTHON="$python" OUT_DIR="$out/bench-$1" RUNS=1 \
    "$here/run.sh" --device "$device" "${bench_args[@]}" --precision "$1"
}
part bench && side_by_side f32 260

# LArTPC generation speed: events/s of the generator (`sample` prints samples/s) against the
# simulator's events/s (printed by simulate).
if part physics; then
  step physics-simulate 60 "$sg" physics simulate --num 2000 --size 64 --out "$out/events.npy"
  if [ ! -f "$gen/checkpoint.json" ]; then
    gen="$out/gen"
    rm -rf "$gen"
    step physics-train 90 "$sg" train --data "npy:$out/events.npy,$out/events-labels.npy" \
      --class-conditional --config "$here/../docs/physics-gpu.toml" --steps "$gen_steps" \
      --device "$device" --out "$gen"
  fi
  for p in f32 bf16; do
    step "physics-warm-$p" 60 "$sg" sample --checkpoint "$gen" --num 16 --sampler heun --steps 2 \
      --class data --precision "$p" --device "$device" --out "$out/warm-$p.npy" &&
      step "physics-sample-$p" 90 "$sg" sample --checkpoint "$gen" --num "$gen_num" \
        --batch "$gen_batch" --sampler heun --steps "$heun" --class data --precision "$p" \
        --seed 71 --device "$device" --out "$out/generated-$p.npy"
  done
  if [ -f "$ssnet/ssnet.json" ] && [ -f "$out/generated-f32.npy" ]; then
    step physics-real 60 "$sg" physics simulate --num $((2 * gen_num)) --size 64 --seed 101 \
      --out "$out/real.npy" &&
      step physics-eval 90 "$sg" physics eval --real "npy:$out/real.npy" \
        --fake "npy:$out/generated-f32.npy" --ssnet "$ssnet" --max-events "$gen_num" \
        --per-class --zero-suppress --json
  fi
fi

# Where a training step's and a sampler's GPU time goes: every kernel's duration (cubecl's
# profiler synchronises after each kernel, so the step is slower than in the bench).
part profile && CUBECL_DEBUG_LOG="$out/cubecl.log" CUBECL_DEBUG_OPTION=profile \
  step profile 60 "$sg" bench --device "$device" "${probe_args[@]}" --repeats 1 --warmup 1

part bench-bf16 && side_by_side bf16 220
for p in f32 bf16; do
  [ -f "$out/bench-$p/table.md" ] && { echo "== side by side, $p"; cat "$out/bench-$p/table.md"; }
done

if part mnist; then
  rm -rf "$out/mnist" "$out/clf"
  step mnist-train $((minutes * 60 + 90)) "$sg" train --data "$data" --first 8000 \
    --class-conditional --config "$here/../docs/mnist-gpu.toml" --precision "$precision" \
    "${train_args[@]}" --device "$device" --out "$out/mnist"
  step mnist-classifier 120 "$sg" classifier --data "$data" --first 8000 --steps "$clf_steps" \
    --device "$device" --out "$out/clf"
  step mnist-sample 60 "$sg" sample --checkpoint "$out/mnist" --num "$num" --sampler ddim \
    --steps "$ddim" --class all --guidance 1 --device "$device" --out "$out/fake.npy"
  step mnist-eval 60 "$sg" eval --real "$data" --fake "npy:$out/fake.npy,$out/fake-labels.npy" \
    --features "$out/clf" --json
fi
echo "== done at $SECONDS s"
exit $status
