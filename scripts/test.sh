#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need on a machine without a GPU (lavapipe
# for WebGPU on the CPU, the npm packages), type-checks, lints, and runs the whole suite, with GPU
# tests required (a missing adapter fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-webgpu-cpu.sh
npm ci --no-audit --no-fund
npx tsc -p tsconfig.json
npx tsc -p tsconfig.test.json
npx biome check --diagnostic-level=error src test
# lavapipe compiles each kernel with LLVM on first use: most of the suite's time with an empty shader cache.
# Without LLVM's optimisation passes it compiles ~30% faster (kda-consistency's K=64 case: 34 s vs 47 s);
# the test shapes are small, so the slower code costs less than it saves.
export GALLIVM_PERF="${GALLIVM_PERF:-nopt}"
# ... and with 4 invocations per SIMD operation instead of 8 (128-bit vectors, not AVX2's 256) it compiles each
# kernel ~1.7x faster again (attentionWide's 80/40 heads, empty cache, same load: 117 s vs 204 s). Subgroups
# become 4 lanes, which the MLA tiled and int8 decode kernels refuse (they need 8, 16 or 32): the test files
# that test them (mla-*, decode-host, decode-replay) import test/lanes-default.ts first and run at the default
# width; a model decode elsewhere runs the split MLA kernel.
export LP_NATIVE_VECTOR_WIDTH="${LP_NATIVE_VECTOR_WIDTH:-128}"
KIMI_REQUIRE_GPU=1 npx vitest run
