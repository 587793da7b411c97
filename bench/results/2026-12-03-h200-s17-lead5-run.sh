#!/usr/bin/env bash
# Seventeenth session, lead's last sitting: main after the session's merges (submits of 256 dispatches; the KDA
# handoff merged, off by default). #4's numbers: hybrid at 4K / 128K / 1M, all-MLA at the same contexts, --check;
# then the KDA handoff's register question (kdahand-next: hold 0 / 4 against off, 4K) and one 1M run with V8's GC
# trace (are the ~0.1 s single-step stalls garbage collections?). Each bench in its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r5; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-150}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8"
t dec 60 $D --steps 32 --context 4096,131072,1048576 --variants hybrid
t dec-mla 60 $D --steps 16 --context 4096,131072,1048576 --variants all-MLA
t dec-chk 40 $D --steps 8 --context 4096 --variants hybrid --check
t dec1m-b 40 $D --steps 32 --context 1048576 --variants hybrid
t h0 30 $D --steps 32 --context 4096 --variants hybrid --kda-handoff on --kda-handoff-hold 0
t h4 30 $D --steps 32 --context 4096 --variants hybrid --kda-handoff on --kda-handoff-hold 4
t hoff 30 $D --steps 32 --context 4096 --variants hybrid --kda-handoff off
NODE_OPTIONS=--trace-gc t gc1m 40 $D --steps 32 --context 1048576 --variants hybrid
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
