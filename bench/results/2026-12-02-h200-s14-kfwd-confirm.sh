#!/usr/bin/env bash
# NOT RUN (kfwd had no third sitting): the forward-level A/B of intraGram's own zeroing loop, the new default on GPUs
# (forwardTuning.ts gramSmEntryByDefault), against the kernel as written (--fwd-gram-sm-entry none), each bench its own
# process, alternating; then the T=2048 check (smEntryVsNone 0 expected). Expected from kfwd's s2 per-kernel times:
# kda_chunk_intra ~1.058 against ~1.065, forward ~0.007 ms less. Copy .device-<name> as the lead's scripts do.
E="bash .device-kfwd/enter.sh"; C=".device-kfwd/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K16="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 $U"
t loop-a 30 $K16
t none-a 30 $K16 --fwd-gram-sm-entry none
t none-b 30 $K16 --fwd-gram-sm-entry none
t loop-b 30 $K16
t loop-c 30 $K16
t none-c 30 $K16 --fwd-gram-sm-entry none
t chk 40 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U
