#!/usr/bin/env bash
# Eighteenth session, lead's fourth sitting: the readback pacer's late reads (one read in 8 probes, the rest map
# 0.5 ms after the estimate) against probes only (--pace-late 0: the window pacer of the second and third sittings)
# and off, 256 steps at 1M and at 4K (the tightest slack: a 3.45 ms step); one GC trace with late reads.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r4; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-240}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 256"
t late-1m-a 40 $D --context 1048576 --pace-readback on
t probe-1m-a 40 $D --context 1048576 --pace-readback on --pace-late 0
t off-1m-a 40 $D --context 1048576 --pace-readback off
t late-4k-a 40 $D --context 4096 --pace-readback on
t probe-4k-a 40 $D --context 4096 --pace-readback on --pace-late 0
t off-4k-a 40 $D --context 4096 --pace-readback off
t late-1m-b 40 $D --context 1048576 --pace-readback on
t probe-1m-b 40 $D --context 1048576 --pace-readback on --pace-late 0
t off-1m-b 40 $D --context 1048576 --pace-readback off
t gc-late 40 $E node --trace-gc $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 256 --context 1048576 --pace-readback on
t chk 40 $E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --steps 8 --context 4096 --variants hybrid --check
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
