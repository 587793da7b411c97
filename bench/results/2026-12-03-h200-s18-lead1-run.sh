#!/usr/bin/env bash
# Eighteenth session, lead's first sitting. (1) bench chain: what a dispatch boundary costs, a chain of dependent
# bf16 GEMVs as one dispatch a phase against one persistent dispatch with grid barriers (plain / tagged data,
# prefetch on / off, grids of 132 and 264). (2) reshand's 'value' read form of the residual handoff (branch
# s17-reshand, bundle .device-rh), A/B against off. (3) the readback pacer over 256 steps at 1M, on / off.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r1; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-330}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
B="$E node $C bench chain --json --grid 132,264"
t chain-18mb 60 $B
t chain-10mb 40 $B --phases 2304x2304 --repeat 8
t chain-56mb 60 $B --phases 12288x2304,2304x12288 --repeat 2
tar -xJf .device-rh/app.tar.xz -C .device-rh
H="$E node .device-rh/app/cli.mjs bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --steps 32 --context 4096,1048576 --variants hybrid"
t rv-a 40 $H --residual-handoff conv --residual-handoff-read value
t off-a 40 $H --residual-handoff off
t rv-b 40 $H --residual-handoff conv --residual-handoff-read value
t off-b 40 $H --residual-handoff off
t rv-chk 40 $E node .device-rh/app/cli.mjs bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --steps 8 --context 4096 --variants hybrid --check --residual-handoff conv --residual-handoff-read value
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 256 --context 1048576"
t pace-on-a 40 $D --pace-readback on
t pace-off-a 40 $D --pace-readback off
t pace-on-b 40 $D --pace-readback on
t pace-off-b 40 $D --pace-readback off
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
