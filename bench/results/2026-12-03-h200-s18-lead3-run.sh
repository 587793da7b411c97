#!/usr/bin/env bash
# Eighteenth session, lead's third sitting: the persistent chain's tagged data with its staging loads issued together
# (settle4) against plain data and one dispatch a phase; then one more pacer pair over 256 steps at 1M.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r3; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-200}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
t chain-18mb 40 $E node $C bench chain --json --grid 132,264 --prefetch off
t chain-10mb 40 $E node $C bench chain --json --grid 132,264 --prefetch off --phases 2304x2304 --repeat 8
t chain-empty 40 $E node $C bench chain --json --grid 132,264 --prefetch off --phases 8x8 --repeat 8
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 256 --context 1048576"
t pace-on-c 40 $D --pace-readback on
t pace-off-c 40 $D --pace-readback off
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
