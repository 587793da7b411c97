#!/usr/bin/env bash
# Seventeenth session, reshand's sitting: the residual handoff (moe_decode_down_shared inside the next KDA
# layer's norm GEMV dispatch, fused/residualHandoff.wgsl.ts) on / off, A/B/A/B in own processes at 4K and 1M,
# one --check with it on, then 'all' (MLA projections and the LM head too) and a profile if time is left.
E="bash .device-reshand/enter.sh"; C=".device-reshand/app/cli.mjs"; R=/tmp/r; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-95}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8"
S="--steps 32 --context 4096,1048576 --variants hybrid"
t on-a 40 $D $S --residual-handoff on
t off-a 30 $D $S --residual-handoff off
t chk-on 30 $D --steps 8 --context 4096 --variants hybrid --check --residual-handoff on
t on-b 30 $D $S --residual-handoff on
t off-b 30 $D $S --residual-handoff off
t all-a 30 $D $S --residual-handoff all
t prof-on 30 $D --steps 16 --context 4096 --variants hybrid --profile --residual-handoff on
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
