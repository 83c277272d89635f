#!/usr/bin/env bash
# The best LArTPC generator so far (docs/physics.md, twenty-fourth run), from scratch: simulated
# events, the judge SSNet-J, the selection's SSNet-T, the generator genH and its guide genW, 2 000
# events sampled with autoguidance plus classifier-free guidance, judged by SSNet-J against
# simulated events of another seed, then unweighted by `physics select` and judged again.
#
#   docs/physics-best.sh                 # about 3 hours on 2 CPU cores (genH alone is ~1 hour)
#   PARALLEL=1 docs/physics-best.sh      # the generator and the rest side by side, one thread each
#   SMOKE=1 docs/physics-best.sh         # every command at a tiny size, a minute: checks the recipe
#
# SG is the scoregen binary (default: scoregen on PATH), DIR the working folder (default
# physics-best). A step whose output exists is skipped, so a killed run continues where it stopped
# (training itself resumes from its last checkpoint with `scoregen train … --resume`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SG="${SG:-scoregen}"
DIR="${DIR:-physics-best}"
mkdir -p "$DIR"
cd "$DIR"

if [[ "${SMOKE:-0}" == 1 ]]; then
  N_TRAIN=600; N_REF=400; N_GEN=40; BATCH=20; SSNET_J=20; SSNET_T=20; GEN=20; GUIDE=20
  MAX_REAL=600; SAMPLE_STEPS=3
else
  N_TRAIN=40000; N_REF=5000; N_GEN=2000; BATCH=400; SSNET_J=8056; SSNET_T=5166; GEN=""; GUIDE=""
  MAX_REAL=10000; SAMPLE_STEPS=25
fi

step() { echo "== $(date +%H:%M:%S) $*"; }

simulate() { # seed, count
  [[ -f "train$1.npy" ]] || { step "simulate seed $1"; "$SG" physics simulate --num "$2" --size 64 --seed "$1" --out "train$1.npy"; }
}

ssnet() { # name, seed, steps
  [[ -f "$1/ssnet.json" ]] || { step "SSNet $1"; "$SG" physics ssnet train --data "npy:train$2.npy" --steps "$3" --lr 2e-3 --seed "$2" --out "$1"; }
}

generator() { # name, config, seed, steps override (empty: the config's)
  [[ -f "$1/done" ]] && return
  step "train $1"
  local resume=()
  [[ -f "$1/checkpoint.json" ]] && resume=(--resume)
  "$SG" train --data npy:train84.npy,train84-labels.npy --class-conditional --config "$here/$2" \
    --seed "$3" ${4:+--steps "$4"} --out "$1" "${resume[@]}"
  touch "$1/done"
}

# The events: training (seed 84), the judge's (85), the selection SSNet's (83), the reference (101).
simulate 84 "$N_TRAIN"
simulate 85 "$N_TRAIN"
simulate 83 "$N_TRAIN"
[[ -f fresh101.npy ]] || { step "simulate the reference events"; "$SG" physics simulate --num "$N_REF" --size 64 --seed 101 --out fresh101.npy; }

others() {
  ssnet ssnetJ 85 "$SSNET_J"
  ssnet ssnetT 83 "$SSNET_T"
  generator genW physics-guide.toml 45 "$GUIDE"
}
if [[ "${PARALLEL:-0}" == 1 ]]; then
  RAYON_NUM_THREADS=1 generator genH physics-best.toml 41 "$GEN" &
  RAYON_NUM_THREADS=1 others
  wait
else
  others
  generator genH physics-best.toml 41 "$GEN"
fi

# 2 000 events, Heun-25, the training data's class mix, autoguided by genW at σ ≤ 1 with
# classifier-free guidance of track-only and background-only events, churn at σ ≥ 1.
[[ -f fake.npy ]] || { step "sample"; "$SG" sample --checkpoint genH --num "$N_GEN" --batch "$BATCH" \
  --sampler heun --steps "$SAMPLE_STEPS" --class data --seed 74 --guidance 0.5 --guide-with genW \
  --free-guidance 3,0,0,3 --guidance-interval 0,1 --s-churn 3 --s-tmin 1 --out fake.npy; }

step "judge the generated events (SSNet-J, against the seed-101 events)"
"$SG" physics eval --real npy:fresh101.npy --fake npy:fake.npy --ssnet ssnetJ --max-events "$N_GEN" \
  --zero-suppress --per-class --plots plots | tee eval.txt

# Unweighting by SSNet-T's observables against simulated events of another seed; judged by SSNet-J.
[[ -f kept.npy ]] || { step "physics select"; "$SG" physics select --real npy:train85.npy \
  --max-real "$MAX_REAL" --fake npy:fake.npy --ssnet ssnetT --zero-suppress --quantile 0.8 \
  --seed 46 --out kept.npy; }
step "judge the kept events"
"$SG" physics eval --real npy:fresh101.npy --fake npy:kept.npy --ssnet ssnetJ --max-events "$N_GEN" \
  --zero-suppress --per-class | tee eval-kept.txt
