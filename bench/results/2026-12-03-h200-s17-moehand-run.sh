#!/usr/bin/env bash
# Seventeenth session, moehand: the MoE route -> gate_up handoff (bench decode --moe-handoff on|off; one dispatch
# fewer per MoE layer). A/B/A/B in own processes at 4K and 1M, --check and --profile with it on, profile off.
E="bash .device-moehand/enter.sh"; C=".device-moehand/app/cli.mjs"; R=/tmp/r; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-170}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid"
t on-a 45 $D --steps 32 --context 4096,1048576 --moe-handoff on
t off-a 45 $D --steps 32 --context 4096,1048576 --moe-handoff off
t on-b 45 $D --steps 32 --context 4096,1048576 --moe-handoff on
t off-b 45 $D --steps 32 --context 4096,1048576 --moe-handoff off
t chk-on 50 $D --check --steps 8 --context 4096 --moe-handoff on
t prof-on 40 $D --profile --steps 16 --context 4096 --moe-handoff on
t prof-off 40 $D --profile --steps 16 --context 4096 --moe-handoff off
t on-c 45 $D --steps 32 --context 4096,1048576 --moe-handoff on
t off-c 45 $D --steps 32 --context 4096,1048576 --moe-handoff off
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
