#!/usr/bin/env bash
# Thirteenth session, lead's sitting A (main with kdagc, decrest, attn, decrest2, kdagc2 merged): every target and
# the opt-in variants to decide, each bench in its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 380 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K16="$K --dtype bf16 $U"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json"
B4="$D --steps 8 --variants hybrid --cache-dtype int8 $U --context 4096"
S2="--fwd-kt-slots 2 --fwd-output-slots 2"
t k16a 30 $K16
t ks-kt2-a 30 $K16 --fwd-kt-slots 2
t ks-out2-a 30 $K16 --fwd-output-slots 2
t ks-both-a 30 $K16 $S2
t ks-all-a 30 $K16 $S2 --fwd-gc-beta-first on
t rest-on-a 25 $B4 --subgroup-sums-rest on
t rest-off-a 25 $B4 --subgroup-sums-rest off
t k-check-s 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U $S2 --fwd-gc-beta-first on
t dec 120 $D --steps 32 --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 $U
t k16b 30 $K16
t ks-kt2-b 30 $K16 --fwd-kt-slots 2
t ks-out2-b 30 $K16 --fwd-output-slots 2
t ks-both-b 30 $K16 $S2
t ks-all-b 30 $K16 $S2 --fwd-gc-beta-first on
t ks-kt4 30 $K16 --fwd-kt-slots 4
t ks-out4 30 $K16 --fwd-output-slots 4
t rest-on-b 25 $B4 --subgroup-sums-rest on
t rest-off-b 25 $B4 --subgroup-sums-rest off
t k32a 30 $K
t kda 60 $E node $C bench kda --json --dtype bf16 $U
t dec-mla 120 $D --steps 16 --context 4096,131072,1048576 --variants all-MLA --cache-dtype int8 $U
t rest-chk 40 $B4 --subgroup-sums-rest on --check --profile
t k-check16 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U
t dec-prof 60 $D --steps 16 --context 1048576 --variants hybrid --cache-dtype int8 --profile $U
t k-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t dec-max 90 $D --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 $U
t k16c 30 $K16
t dec1m-b 60 $D --steps 32 --context 1048576 --variants hybrid --cache-dtype int8 $U
cp $OUT/times.txt $OUT/times-copy.txt 2>/dev/null
