#!/usr/bin/env bash
# Fourteenth session, kfwd's second sitting: intraGram's and the Kt pre-pass's entry points begun with Tint's zeroing
# loop written into the kernel (under the driver's zeroing) or with a barrier alone (--fwd-gram-sm-entry /
# --fwd-kt-sm-entry loop|barrier, both kernels in one run: their times are separate kernels); intraGram walking 2 or 4
# chunk slots a workgroup (--fwd-gram-slots); every pass's inputs read-only (--fwd-rw none: the Kt pre-pass read-only,
# unmeasured since the Kt form became the default); Dawn's safe robustness toggles (integer range analysis, robust
# buffer access 2: no change in the eleventh session, the kernels changed since). Each bench its own process,
# rotating order; then the checks.
E="bash .device-kfwd/enter.sh"; C=".device-kfwd/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 160 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K16="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 $U"
CHK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U"
e() { echo "--fwd-gram-sm-entry $1 --fwd-kt-sm-entry $1"; }
t def-a 30 $K16
t loop-a 30 $K16 $(e loop)
t bar-a 30 $K16 $(e barrier)
t s2-a 30 $K16 --fwd-gram-slots 2
t rwn-a 30 $K16 --fwd-rw none
t rwn-b 30 $K16 --fwd-rw none
t s2-b 30 $K16 --fwd-gram-slots 2
t bar-b 30 $K16 $(e barrier)
t loop-b 30 $K16 $(e loop)
t def-b 30 $K16
t s4-a 30 $K16 --fwd-gram-slots 4
t loop-c 30 $K16 $(e loop)
t def-c 30 $K16
t bar-c 30 $K16 $(e barrier)
t chk-loop 40 $CHK $(e loop) --fwd-gram-slots 2
t chk-bar 40 $CHK $(e barrier)
t ira-a 30 $K16 --dawn-toggles enable_integer_range_analysis_in_robustness
t safe-a 30 $K16 --dawn-toggles enable_integer_range_analysis_in_robustness,vulkan_use_buffer_robust_access_2
t def-d 30 $K16
t ira-b 30 $K16 --dawn-toggles enable_integer_range_analysis_in_robustness
t safe-b 30 $K16 --dawn-toggles enable_integer_range_analysis_in_robustness,vulkan_use_buffer_robust_access_2
t loop-d 30 $K16 $(e loop)
t bar-d 30 $K16 $(e barrier)
t def-e 30 $K16
