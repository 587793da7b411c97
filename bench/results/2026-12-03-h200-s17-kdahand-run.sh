#!/usr/bin/env bash
# Seventeenth session, kdahand: the KDA handoff (the recurrent step and the gated o_norm + o_proj as one dispatch,
# BatchSession kdaHandoff / bench decode --kda-handoff) against the two dispatches, 48B preset, batch 1, int8 cache,
# A/B/A/B in their own processes at 4K and 1M; --check with it on; a profile with it on.
E="bash .device-kdahand/enter.sh"; C=".device-kdahand/app/cli.mjs"; R=/tmp/r; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-175}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid"
t on1 60 $D --steps 32 --context 4096,1048576 --kda-handoff on
t off1 60 $D --steps 32 --context 4096,1048576 --kda-handoff off
t chk 45 $D --steps 8 --context 4096 --check --kda-handoff on
t on2 60 $D --steps 32 --context 4096,1048576 --kda-handoff on
t off2 60 $D --steps 32 --context 4096,1048576 --kda-handoff off
t prof 40 $D --steps 16 --context 4096 --profile --kda-handoff on
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
