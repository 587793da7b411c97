#!/usr/bin/env bash
# decrest3, fifteenth session, one sitting: the decode step outside attention (48B preset, batch 1, int8 cache,
# --unsafe-apis --f16). A 4K profiled sweep (one process) of the new knobs (MoE input rows staged in workgroup
# memory, norm GEMVs at 64 lanes a row by kind, KDA's gated norm GEMV at 64 lanes, MoE rows a workgroup), then the
# knobs whose kernel got faster (pick.mjs) against the defaults in own processes, A/B/A/B at 4K and 1M, and --check.
E="bash .device-decrest3/enter.sh"; C=".device-decrest3/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${LIMIT:-215} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 --unsafe-apis --f16"
t info 20 $E node $C info --json
SW='[{"label":"base"},{"label":"stage-gu","moeStage":[true,false]},{"label":"stage-dn","moeStage":[false,true]},{"label":"ng64-route","normGemvLanes":[32,32,64]},{"label":"ng64-plain","normGemvLanes":[64,32,32]},{"label":"ng64-conv","normGemvLanes":[32,64,32]},{"label":"gated64","gatedLanes":64},{"label":"base2"},{"label":"gu-r4","moeRows":[4,4]},{"label":"dn-r2","moeRows":[8,2]},{"label":"all","moeStage":[true,true],"normGemvLanes":[64,64,64],"gatedLanes":64},{"label":"base3"}]'
t sweep 90 $D --steps 16 --context 4096 --profile --sweep "$SW"
P=$(bash .device-decrest3/enter.sh node .device-decrest3/pick.mjs $R/sweep.json 2> $OUT/pick.txt)
echo "PICK $P" >> $OUT/pick.txt; echo "[pick] $P" >> $OUT/times.txt
t d4k-a 25 $D --steps 32 --context 4096
t d4k-p-a 25 $D --steps 32 --context 4096 $P
t d4k-b 25 $D --steps 32 --context 4096
t d4k-p-b 25 $D --steps 32 --context 4096 $P
t chk-p 40 $D --steps 8 --context 4096 --check --profile $P
t d1m-p 35 $D --steps 32 --context 1048576 $P
t d1m 35 $D --steps 32 --context 1048576
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
