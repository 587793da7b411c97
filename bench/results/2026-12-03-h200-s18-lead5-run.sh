#!/usr/bin/env bash
# Eighteenth session, lead's last sitting (final code): the batch-limited figure at 1M (largest batch each cache
# allows in 135 GB, hybrid and all-MLA), and hybrid 1M once more with the final pacer defaults.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r5; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-200}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8"
t dec-max 100 $D --steps 4 --context 1048576 --max-batch --memory-gb 135
t dec1m 40 $D --steps 256 --context 1048576 --variants hybrid
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
