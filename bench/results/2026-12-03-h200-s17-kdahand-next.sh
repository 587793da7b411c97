#!/usr/bin/env bash
# NOT RUN (kdahand had one sitting). The KDA handoff's next questions, for whoever has device time: does holding
# fewer W chunks a GEMV lane (fewer registers, more workgroups an SM) close the gap to the two dispatches?
# Same setup as 2026-12-03-h200-s17-kdahand-run.sh (copy .device-kdahand, then `bash .device-kdahand/run.sh`).
E="bash .device-kdahand/enter.sh"; C=".device-kdahand/app/cli.mjs"; R=/tmp/r; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-140}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 32 --context 4096"
t h0 40 $D --kda-handoff on --kda-handoff-hold 0
t h4 40 $D --kda-handoff on --kda-handoff-hold 4
t off 40 $D --kda-handoff off
t h0p 40 $D --kda-handoff on --kda-handoff-hold 0 --profile --steps 16
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
