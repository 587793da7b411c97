#!/usr/bin/env bash
# Fourteenth session, lead's final sitting (main with the engineers' branches merged): every target, each bench in
# its own process, the claims first.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-330}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K16="$K --dtype bf16 $U"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --cache-dtype int8 $U"
t k16a 30 $K16
t dec 120 $D --steps 32 --context 4096,131072,1048576 --variants hybrid
t k16b 30 $K16
t dec-mla 120 $D --steps 16 --context 4096,131072,1048576 --variants all-MLA
t k16c 30 $K16
t dec1m-ahead2 60 $D --steps 32 --context 1048576 --variants hybrid --steps-ahead 2
t kda 60 $E node $C bench kda --json --dtype bf16 $U
t k-check16 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U
t dec-chk 40 $D --steps 8 --context 4096 --variants hybrid --check --profile
t k32 30 $K
t dec-prof 60 $D --steps 16 --context 1048576 --variants hybrid --profile
t k-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t dec-max 90 $D --steps 4 --context 1048576 --max-batch --memory-gb 135
t k16d 30 $K16
