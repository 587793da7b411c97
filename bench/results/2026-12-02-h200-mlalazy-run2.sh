#!/usr/bin/env bash
# mlalazy sitting 2: the lazy form's device check (SGM_LAZY_CHECK_VARIANTS at 4K, timed at 1M). carry [".device-mlalazy"].
E="bash .device-mlalazy/enter.sh"; C=".device-mlalazy/app/cli.mjs"
M="$E node $C bench mla --json --unsafe-apis --cache-dtype int8"
timeout 45 $M --context 1048576,4096 --int8-kernels subgroup-matrix --int8-variants sgm-lazy-check --sweep-chunks '' > $OUT/chk.json 2> $OUT/chk.err
echo "rc=$?"; tail -c 400 $OUT/chk.err
python3 .device-mlalazy/summary.py $OUT 2>&1 | grep -v "no JSON"
# Result (sitting 2, 106 s of device time): every variant of SGM_LAZY_CHECK_VARIANTS as it was then (lazy,
# lazyBarrier, lazyEvery, both, lazyBarrier + lazyFlush=false) 0.7245 of max |o| off the int8 reference at 4K;
# bench/results/2026-12-02-h200-mlalazy-chk.json. The same command now also runs lazySRef1 and lazyEvery +
# lazyMultiply (with and without lazySRef1): the next session's first check.
