#!/usr/bin/env bash
# mlalazy3's one sitting (tenth session; run with carry [".device-mlalazy3"], sum.mjs copied there from
# 2026-12-02-h200-mlalazy3-sum.mjs; 45.5 s of command, 137 s of device budget with the cold start):
# the alignment probe and the lazy checks at 4K (chk.json), then, only if the padded lazy form is within 1e-2 of the
# int8 reference, the lazy rows against the default kernel at 128K and 1M and their timings at 1M (long.json).
E="bash .device-mlalazy3/enter.sh"; C=".device-mlalazy3/app/cli.mjs"; M="$E node $C bench mla --json --unsafe-apis --cache-dtype int8 --int8-kernels subgroup-matrix"; S="$E node .device-mlalazy3/sum.mjs"
timeout 60 $M --sweep-chunks '' --context 4096 --int8-variants sgm-lazy-check > $OUT/chk.json 2> $OUT/chk.err; echo "chk rc=$?"; tail -c 300 $OUT/chk.err
if $S $OUT/chk.json gate; then timeout 90 $M --sweep-chunks '' --context 131072,1048576 --int8-variants sgm-lazy > $OUT/long.json 2> $OUT/long.err; echo "long rc=$?"; tail -c 300 $OUT/long.err; $S $OUT/long.json; else echo "gate: lazy not within 1e-2"; fi
