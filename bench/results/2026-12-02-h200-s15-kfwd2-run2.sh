#!/usr/bin/env bash
# Fifteenth session, kfwd2's second sitting: the new default (the Kt state pass's Kb formed by its idle threads,
# stateKbEarlyByDefault 'idleAll', with intraGram's entry loop) in repeated processes with the exact command
# ('dflt'), against the old state pass (--fwd-state-kb-early none); the state pass at 512 threads with it; f32 inputs
# with idleAll asked for (not their default: unmeasured before); the T=2048 checks (bf16 default; f32 with idleAll).
E="bash .device-kfwd2/enter.sh"; C=".device-kfwd2/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K16="$K --dtype bf16 $U"
KB="--fwd-state-kb-early"
t dflt-a 30 $K16
t none-a 30 $K16 $KB none
t dflt-b 30 $K16
t chk 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U
t dflt-c 30 $K16
t none-b 30 $K16 $KB none
t dflt-d 30 $K16
t wg512-a 30 $K16 --fwd-state-wg 512
t f32-a 30 $K
t f32ia-a 30 $K $KB idleAll
t dflt-e 30 $K16
t none-c 30 $K16 $KB none
t f32ia-b 30 $K $KB idleAll
t f32-b 30 $K
t dflt-f 30 $K16
t wg512-b 30 $K16 --fwd-state-wg 512
t chk32 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward $KB idleAll
t dflt-g 30 $K16
t f32ia-c 30 $K $KB idleAll
t f32-c 30 $K
t dflt-h 30 $K16
