#!/usr/bin/env bash
# Sixteenth session, f16c, second sitting: the f16 cache with four blocks fetched ahead (ahead 4: twice the bytes in
# flight; the first sitting's f16 staging ran 0.797 ms a layer at 1M against int8's 0.568), plain and f16Rotate,
# in bench mla (checked at 4K, cross-checked at 1M) and hybrid TPOT at 1M A/B/A/B against int8; --check at 4K.
E="bash .device-f16c/enter.sh"; C=".device-f16c/app/cli.mjs"; R=/tmp/r-f16c2; mkdir -p $R; START=$(date +%s)
$E true >/dev/null 2>&1
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-185} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid $U"
t mla-f16 70 $E node $C bench mla --json --cache-dtype f16 $U --context 4096,1048576
t d1m-a4-a 30 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 ahead=4
t d1m-ra4-a 30 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 f16Rotate,ahead=4
t d1m-i8-a 30 $D --cache-dtype int8 --steps 32 --context 1048576
t d1m-a4-b 30 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 ahead=4
t d1m-ra4-b 30 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 f16Rotate,ahead=4
t d1m-i8-b 30 $D --cache-dtype int8 --steps 32 --context 1048576
t chk-ra4 40 $D --cache-dtype f16 --steps 8 --context 4096 --check --mla-int8-f16 f16Rotate,ahead=4
t mla-i8 40 $E node $C bench mla --json --cache-dtype int8 $U --context 1048576 --int8-kernels f16 --int8-variants none --sweep-chunks ''
python3 .device-f16c/summary.py $R > $OUT/summary.txt 2>&1
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
