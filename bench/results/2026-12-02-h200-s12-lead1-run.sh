#!/usr/bin/env bash
# Twelfth session, lead's final sitting (main 360d9cf: hbf16, gram, mlaf16 merged; hB bf16 + idle stores and the
# f16 MLA kernel the defaults under --unsafe-apis --f16): every target, each bench in its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 330 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"
t k16a 30 $K --dtype bf16 $U
t k32a 30 $K
t kda 60 $E node $C bench kda --json --dtype bf16 $U
t dec 90 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 --check $U
t k16b 30 $K --dtype bf16 $U
t k16-hboff 30 $K --dtype bf16 $U --fwd-hb-bf16 off
t k-check16 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U
t dec-mla 90 $D --context 4096,131072,1048576 --variants all-MLA --cache-dtype int8 $U
t k16c 30 $K --dtype bf16 $U
t k32-idle 30 $K --fwd-state-idle-stores on
t k-fb 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
t k-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t dec-prof 45 $D --context 1048576 --variants hybrid --cache-dtype int8 --profile $U
t dec-sgm 45 $D --context 1048576 --variants hybrid --cache-dtype int8 $U --mla-int8-kernel subgroup-matrix
t dec-max 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 $U
t k16d 30 $K --dtype bf16 $U
t k32b 30 $K
cp $OUT/times.txt $OUT/times-copy.txt 2>/dev/null
