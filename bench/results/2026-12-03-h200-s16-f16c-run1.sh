#!/usr/bin/env bash
# Run as .device-f16c/run.sh (the device tool sends /work/main's checkout: bundle and script copied into its ignored
# folder .device-f16c/ and carried). Sixteenth session, f16c (branch s16-f16c), one command: the f16 latent cache
# (`--cache-dtype f16`: f16 rows staged by vec4 copies on the f16 tensor-core kernel, plain and f16Rotate, stage
# diagnostics, each checked at 4K against its scheme's reference and f32 attention, cross-checked against the tiled
# kernel at 1M), the int8 default in the same sitting (A/B), hybrid TPOT at 1M f16 / int8 (A/B/A/B, f16Rotate twice),
# bench decode --check at 4K with f16, then 4K / 128K / 1M f16 and int8.
E="bash .device-f16c/enter.sh"; C=".device-f16c/app/cli.mjs"; R=/tmp/r-f16c; mkdir -p $R; START=$(date +%s)
$E true >/dev/null 2>&1
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-185} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid $U"
t mla-f16 70 $E node $C bench mla --json --cache-dtype f16 $U --context 4096,1048576
t d1m-f16-a 30 $D --cache-dtype f16 --steps 32 --context 1048576
t d1m-i8-a 30 $D --cache-dtype int8 --steps 32 --context 1048576
t mla-i8 40 $E node $C bench mla --json --cache-dtype int8 $U --context 1048576 --int8-kernels f16 --int8-variants none --sweep-chunks ''
t d1m-rot-a 30 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 f16Rotate
t chk-f16 40 $D --cache-dtype f16 --steps 8 --context 4096 --check
t d1m-f16-b 30 $D --cache-dtype f16 --steps 32 --context 1048576
t d1m-i8-b 30 $D --cache-dtype int8 --steps 32 --context 1048576
t d1m-rot-b 30 $D --cache-dtype f16 --steps 32 --context 1048576 --mla-int8-f16 f16Rotate
t d3-f16 45 $D --cache-dtype f16 --steps 32 --context 4096,131072,1048576
t d3-i8 45 $D --cache-dtype int8 --steps 32 --context 4096,131072,1048576
python3 .device-f16c/summary.py $R > $OUT/summary.txt 2>&1
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
