#!/usr/bin/env bash
# decrest4, fifteenth session (prepared for the lead; not run by decrest4): the first real A/B of the MoE decode
# knobs pairGateUp, unrollGateUp and prefetchDown against the default (the kmoe sweep that "measured" them leaked
# every variant's knobs into the other rows, so it compared equal kernels; decrest3 fixed the sweep's restore).
# One profiled process at 4K, the toggles in A B C D / D C B A order between three base rows (~20-30 s on the
# H200). test/decode-sweep.test.ts checks that this spec parses and that each row changes only its own kernel.
# DEV: the packed app's folder (scripts/device-prepare.sh, copied into /work/main as .device-<name>).
DEV=${DEV:-.device-decrest4}; E="bash $DEV/enter.sh"; C="$DEV/app/cli.mjs"; R=/tmp/r-decrest4; rm -rf $R; mkdir -p $R
SW='[{"label":"base"},{"label":"pair","moePairGateUp":true},{"label":"unroll2","moeUnrollGateUp":2},{"label":"pfDown","moePrefetchDown":true},{"label":"base2"},{"label":"pfDown-b","moePrefetchDown":true},{"label":"unroll2-b","moeUnrollGateUp":2},{"label":"pair-b","moePairGateUp":true},{"label":"base3"}]'
s=$(date +%s)
timeout 120 $E node $C bench decode --preset kimi-linear-48b-a3b --json --cache-dtype int8 --unsafe-apis --f16 --steps 16 --context 4096 --variants hybrid --profile --sweep "$SW" > $R/sweep.json 2> $R/sweep.err; rc=$?
echo "[$(( $(date +%s) - s )) s rc=$rc] sweep" >> $OUT/times.txt; grep -v Warning $R/sweep.err | tail -c 400 >> $OUT/times.txt
tar -C $R -czf $OUT/raw.tgz .
