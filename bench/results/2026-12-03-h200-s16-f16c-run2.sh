#!/usr/bin/env bash
# Sixteenth session, f16c, second command (same sitting): hybrid TPOT at 4K / 128K / 1M for f16 (and f16Rotate at 1M
# where ROT=1) against int8, and bench decode --check at 4K with the f16 cache.
E="bash .device-f16c/enter.sh"; C=".device-f16c/app/cli.mjs"; R=/tmp/r-f16c2; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-185} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid $U"
t chk-f16 45 $D --cache-dtype f16 --steps 8 --context 4096 --check
t d3-f16 60 $D --cache-dtype f16 --steps 32 --context 4096,131072,1048576
t d3-i8 60 $D --cache-dtype int8 --steps 32 --context 4096,131072,1048576
if [ "${ROT:-0}" = 1 ]; then
  t d1m-rot-a 35 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 f16Rotate
  t d1m-f16-c 35 $D --cache-dtype f16 --steps 32 --context 1048576
  t d1m-rot-b 35 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 f16Rotate
fi
python3 .device-f16c/summary.py $R > $OUT/summary.txt 2>&1
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
