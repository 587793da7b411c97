#!/usr/bin/env bash
# decrest3, fifteenth session, second sitting: the MoE kernels' partial dots in registers (--moe-reg-sums) against
# the default at 4K (profiled sweep, then own processes A/B/A/B, --check), and a diagnostic: the same step with
# Dawn's disable_workgroup_init (unsafe: workgroup memory not zeroed) to see what the zeroing costs the decode step
# and whether it explains sitting 1's slower staged MoE variants.
E="bash .device-decrest3/enter.sh"; C=".device-decrest3/app/cli.mjs"; R=/tmp/r-decrest3; rm -rf $R; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${LIMIT:-150} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 --unsafe-apis --f16"
SW='[{"label":"base"},{"label":"reg","moeRegSums":true},{"label":"base2"},{"label":"reg2","moeRegSums":true}]'
t sweep 45 $D --steps 16 --context 4096 --profile --sweep "$SW"
SW2='[{"label":"base"},{"label":"stage-gu","moeStage":[true,false]},{"label":"stage-dn","moeStage":[false,true]},{"label":"reg","moeRegSums":true},{"label":"base2"}]'
t sweep-noinit 50 $D --steps 16 --context 4096 --profile --dawn-toggles disable_workgroup_init --sweep "$SW2"
t d4k-a 25 $D --steps 32 --context 4096
t d4k-r-a 25 $D --steps 32 --context 4096 --moe-reg-sums on
t d4k-b 25 $D --steps 32 --context 4096
t d4k-r-b 25 $D --steps 32 --context 4096 --moe-reg-sums on
t chk-r 40 $D --steps 8 --context 4096 --check --profile --moe-reg-sums on
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
