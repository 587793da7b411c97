#!/usr/bin/env bash
# Eighteenth session, lead's second sitting (main after the pacer's fix: the least of the last 8 reads' times). (1)
# the readback pacer over 256 steps at 1M, on / off / on / off, with each step's host and wait ms (where do the
# ~0.15-0.2 s stalls sit?); one more with V8's GC trace. (2) bench chain with one-row phases: what a dispatch boundary
# and a grid barrier cost with almost no work; the 18.9 / 10.6 MB chains again with the barrier in two halves (the next
# phase's first row loaded between the arrival and the wait). (3) #4's numbers on the final code.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r2; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-330}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
t chain-empty 40 $E node $C bench chain --json --grid 132,264 --phases 8x8 --repeat 8
t chain-18mb 40 $E node $C bench chain --json --grid 132,264
t chain-10mb 40 $E node $C bench chain --json --grid 132,264 --phases 2304x2304 --repeat 8
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 256 --context 1048576"
t pace-on-a 40 $D --pace-readback on
t pace-off-a 40 $D --pace-readback off
t pace-on-b 40 $D --pace-readback on
t pace-off-b 40 $D --pace-readback off
t gc-on 40 $E node --trace-gc $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 256 --context 1048576 --pace-readback on
M="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8"
t dec 60 $M --steps 32 --context 4096,131072,1048576 --variants hybrid
t dec-mla 60 $M --steps 16 --context 4096,131072,1048576 --variants all-MLA
t dec-chk 40 $M --steps 8 --context 4096 --variants hybrid --check
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
