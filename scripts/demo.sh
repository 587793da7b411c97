#!/usr/bin/env bash
# The README demo: installs and builds if needed, then shows what works today on the bundled files:
# the device, generation from the tiny Kimi Linear checkpoint (random weights, so the text is noise: it
# shows the machinery, prefill then decode from the hybrid cache), its layer map and cache sizes (and
# the released 48B config's), a versioned token dataset built from the bundled corpus and traced back
# to its source, a small KDA benchmark on whatever backend this machine has, and finally a few minutes of
# training a tiny hybrid on the bundled fables (held-out loss vs a unigram baseline) and generating from it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p tsconfig.json
kl() { node dist/cli/main.js "$@" 2> >(grep -v '^Warning: maxDynamic' >&2); }
echo "== kimi-linear info"; kl info
echo; echo "== generate from the bundled tiny checkpoint (random weights: expect noise)"
kl generate --model fixtures/tiny-kimi --prompt "The river ran low" --max-tokens 32 --seed 1
echo; echo "== inspect the bundled tiny checkpoint"; kl inspect --model fixtures/tiny-kimi
echo; echo "== inspect the released 48B-A3B config"; kl inspect --config fixtures/configs/kimi-linear-48b-a3b.json
out=$(mktemp -d)/demo-dataset
echo; echo "== build a dataset from the bundled corpus"; kl data build --recipe fixtures/corpus/recipe.yaml --out "$out"
echo; echo "== where the tokens of training step 0 come from"; kl data trace --dataset "$out" --step 0 --batch-size 1 --seq-len 48
echo; echo "== KDA chunked forward on this machine's backend"; kl bench kda --T 128 --batch 1,4 --chunk-heads 2 --decode-heads 2 --d 32 --reps 2 --trials 1 || echo "(skipped: needs a WebGPU adapter; scripts/install-webgpu-cpu.sh gives one)"
# Training: the tiny hybrid learns the bundled Aesop fables (bytes) for a few minutes on the cpu backend
# (faster than lavapipe WebGPU at this size), prints its held-out loss beside the unigram baseline, and
# generates from the checkpoint it wrote.
run="$(mktemp -d)/demo-train"
echo; echo "== train the tiny hybrid on the bundled fables (cpu backend, a few minutes)"
kl train --config fixtures/train/demo.yaml --backend cpu --run-dir "$run"
echo; echo "== generate from the trained checkpoint"
kl generate --model "$run/checkpoints/$(cat "$run/checkpoints/latest")" --prompt "The Fox said" --max-tokens 120 --temperature 0.7 --seed 1 --backend cpu
echo
