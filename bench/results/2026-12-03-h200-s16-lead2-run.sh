#!/usr/bin/env bash
# Sixteenth session, lead's second sitting (main with the f16 cache merged): #4's numbers again on the final code
# (int8 cache, the default; each bench in its own process), the f16 cache beside it, --check of both, and the MLA
# f16 kernel's stage diagnostics at 1M (the first sitting's f16-s15c sweep ran on a GPU slowed mid-run).
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r2; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-300}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json $U"
t dec 90 $D --cache-dtype int8 --steps 32 --context 4096,131072,1048576 --variants hybrid
t dec-mla 120 $D --cache-dtype int8 --steps 16 --context 4096,131072,1048576 --variants all-MLA
t dec-chk 60 $D --cache-dtype int8 --steps 8 --context 4096 --variants hybrid --check
t dec-f16 60 $D --cache-dtype f16 --steps 32 --context 1048576 --variants hybrid
t dec-f16-chk 60 $D --cache-dtype f16 --steps 8 --context 4096 --variants hybrid --check
t mla-s15c 90 $E node $C bench mla --json --cache-dtype int8 $U --int8-kernels f16 --sweep-chunks 132 --context 1048576 --int8-variants f16-s15c
t dec1m-b 60 $D --cache-dtype int8 --steps 32 --context 1048576 --variants hybrid
t dec-max 90 $D --cache-dtype int8 --steps 4 --context 1048576 --max-batch --memory-gb 135
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
