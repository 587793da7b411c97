#!/usr/bin/env bash
# Seventeenth session, lead's sixth sitting (main + the readback pacer, uncommitted at the time): does mapping each
# step's ids after a timer (--pace-readback on, model/readbackPacer.ts) keep the median and cut the host stalls
# (means) and garbage? Hybrid at 4K and 1M, 64 steps, own processes A/B/A/B; --check with it on.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r6; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-120}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 64 --context 4096,1048576"
t on-a 40 $D --pace-readback on
t off-a 40 $D --pace-readback off
t on-b 40 $D --pace-readback on
t off-b 40 $D --pace-readback off
t chk 40 $E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 8 --context 4096 --check --pace-readback on
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
