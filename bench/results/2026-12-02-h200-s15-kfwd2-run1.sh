#!/usr/bin/env bash
# Fifteenth session, kfwd2's first sitting. (1) The forward-level A/B of intraGram zeroing its own workgroup memory at
# entry (the default since s14-kfwd, gramSmEntryByDefault: 'def') against the kernel as written (--fwd-gram-sm-entry
# none), each bench its own process, alternating (bench/results/2026-12-02-h200-s14-kfwd-confirm.sh, never run).
# (2) The Kt form's state pass forming the next chunk's Kb = k exp(gc) early (--fwd-state-kb-early idle|all|idleAll)
# and its decays on the state-phase threads only (--fwd-state-decay-is2 on). (3) The T=2048 check (kbEarly*,
# decayIs2VsAll, smEntryVsNone: 0 expected).
E="bash .device-kfwd2/enter.sh"; C=".device-kfwd2/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K16="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 $U"
CHK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U"
KB="--fwd-state-kb-early"
t def-a 30 $K16
t none-a 30 $K16 --fwd-gram-sm-entry none
t idle-a 30 $K16 $KB idle
t all-a 30 $K16 $KB all
t ia-a 30 $K16 $KB idleAll
t d2-a 30 $K16 --fwd-state-decay-is2 on
t chk 45 $CHK $KB idleAll --fwd-state-decay-is2 on
t none-b 30 $K16 --fwd-gram-sm-entry none
t def-b 30 $K16
t ia-b 30 $K16 $KB idleAll
t idle-b 30 $K16 $KB idle
t all-b 30 $K16 $KB all
t iad2-a 30 $K16 $KB idleAll --fwd-state-decay-is2 on
t def-c 30 $K16
t none-c 30 $K16 --fwd-gram-sm-entry none
t ia-c 30 $K16 $KB idleAll
t idle-c 30 $K16 $KB idle
t d2-b 30 $K16 --fwd-state-decay-is2 on
t none-d 30 $K16 --fwd-gram-sm-entry none
t def-d 30 $K16
t all-c 30 $K16 $KB all
t ia-d 30 $K16 $KB idleAll
t iad2-b 30 $K16 $KB idleAll --fwd-state-decay-is2 on
t def-e 30 $K16
