#!/usr/bin/env bash
# Sixteenth session, lead's first sitting (main with the fifteenth session's kfwd2, mla3, decrest3, mla4 and decrest4 merged): every target,
# each bench in its own process, the claims first; then the engineers' candidates.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-420}
MOE_SWEEP='[{"label":"base"},{"label":"pair","moePairGateUp":true},{"label":"unroll2","moeUnrollGateUp":2},{"label":"pfDown","moePrefetchDown":true},{"label":"base2"},{"label":"pfDown-b","moePrefetchDown":true},{"label":"unroll2-b","moeUnrollGateUp":2},{"label":"pair-b","moePairGateUp":true},{"label":"base3"}]'
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K16="$K --dtype bf16 $U"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --cache-dtype int8 $U"
t k16a 30 $K16
t dec 90 $D --steps 32 --context 4096,131072,1048576 --variants hybrid
t k16b 30 $K16
t dec-mla 120 $D --steps 16 --context 4096,131072,1048576 --variants all-MLA
t k16c 30 $K16
t kda 90 $E node $C bench kda --json --dtype bf16 $U
t k-check16 40 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U
t dec-chk 60 $D --steps 8 --context 4096 --variants hybrid --check --profile
t dec1m-ahead2 60 $D --steps 32 --context 1048576 --variants hybrid --steps-ahead 2
t dec-prof 60 $D --steps 16 --context 1048576 --variants hybrid --profile
t mla-s15c 90 $E node $C bench mla --json --cache-dtype int8 $U --int8-kernels f16 --sweep-chunks 132 --context 1048576 --int8-variants f16-s15c
t moe-sweep 60 $D --steps 16 --context 4096 --variants hybrid --profile --sweep "$MOE_SWEEP"
t k32 30 $K
t dec-max 90 $D --steps 4 --context 1048576 --max-batch --memory-gb 135
t k16d 30 $K16
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
