#!/usr/bin/env bash
# Thirteenth session, lead's sitting B (diagnostics for the next session): the 1M host stall with V8's GC traced,
# the f16 MLA kernel's stages left out one at a time at 1M (rows staging, two ahead), the bf16 forward with Tint's
# workgroup-memory zeroing off (unsafe toggle: a data point, not a claim).
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K16="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 $U"
t gc1m 60 $E node --trace-gc $C bench decode --preset kimi-linear-48b-a3b --json --steps 64 --context 1048576 --variants hybrid --cache-dtype int8 $U
t k16-noinit-a 30 $K16 --dawn-toggles disable_workgroup_init
t k16-a 30 $K16
t k16-noinit-b 30 $K16 --dawn-toggles disable_workgroup_init
t stages 120 $E node $C bench mla --json --cache-dtype int8 $U --context 1048576 --int8-kernels f16 --int8-variants f16-stages --sweep-chunks ''
t k16-b 30 $K16
cp $OUT/times.txt $OUT/times-copy.txt 2>/dev/null
