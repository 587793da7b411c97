#!/usr/bin/env bash
# Seventeenth session, lead's second sitting (main 713580a): the first sitting found --disable-robustness takes
# ~0.165 ms off the 4K step (R_h, the step outside the MLA attention). Do the SAFE robustness toggles (the driver's
# robustBufferAccess2 instead of Tint's clamps on runtime-sized arrays; integer range analysis) recover it?
# Each bench in its own process, A/B/A/B.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r2; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-150}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid"
T2="--dawn-toggles vulkan_use_buffer_robust_access_2"
TB="--dawn-toggles vulkan_use_buffer_robust_access_2,enable_integer_range_analysis_in_robustness"
t ra2-a 40 $D --steps 32 --context 4096,1048576 $T2
t base-a 40 $D --steps 32 --context 4096,1048576
t both-a 40 $D --steps 32 --context 4096,1048576 $TB
t ra2-b 40 $D --steps 32 --context 4096,1048576 $T2
t base-b 40 $D --steps 32 --context 4096,1048576
t both-b 40 $D --steps 32 --context 4096,1048576 $TB
t ira-a 40 $D --steps 32 --context 4096,1048576 --dawn-toggles enable_integer_range_analysis_in_robustness
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
