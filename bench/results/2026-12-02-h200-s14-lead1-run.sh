#!/usr/bin/env bash
# Fourteenth session, lead's first sitting: Tint's zeroing of workgroup memory against the driver's
# (Dawn's default on the H200: use_vulkan_zero_initialize_workgroup_memory_extension), each bench its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
OFF="--dawn-toggles-off use_vulkan_zero_initialize_workgroup_memory_extension"
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K16="$K --dtype bf16 $U"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 $U"
t k16-a 30 $K16
t k16-off-a 30 $K16 $OFF
t k16-b 30 $K16
t k16-off-b 30 $K16 $OFF
t k16-noinit 30 $K16 --dawn-toggles disable_workgroup_init
t k16-off-c 30 $K16 $OFF
t k16-c 30 $K16
t k32 30 $K
t k32-off 30 $K $OFF
t kchk-off 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U $OFF
t d1m 40 $D --steps 16 --context 1048576
t d1m-off 40 $D --steps 16 --context 1048576 $OFF
t d4k-off 30 $D --steps 16 --context 4096 $OFF
t d4k 30 $D --steps 16 --context 4096
t k16-off-d 30 $K16 $OFF
t k16-d 30 $K16
