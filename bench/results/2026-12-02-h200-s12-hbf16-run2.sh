#!/usr/bin/env bash
# Twelfth session, engineer hbf16, second call of the same sitting (machine still warm): hB bf16 with the state pass's
# idle-thread stores (--fwd-state-idle-stores on) against off, alternated twice; idle stores with f32 hB; --check
# with both on. Each bench its own process; JSON to $OUT (the -s2-*.json files beside this script).
E="bash .device-hbf16/enter.sh"; C=".device-hbf16/app/cli.mjs"; R=$OUT
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis --f16"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --dtype bf16 --unsafe-apis --f16"
for n in "is-on1:--fwd-hb-bf16 on --fwd-state-idle-stores on" "off1:--fwd-hb-bf16 off" \
  "is-on2:--fwd-hb-bf16 on --fwd-state-idle-stores on" "off2:--fwd-hb-bf16 off" \
  "is-off:--fwd-hb-bf16 off --fwd-state-idle-stores on"; do
  timeout 30 $K ${n#*:} > $R/${n%%:*}.json 2>/dev/null
done
timeout 40 $CK --fwd-hb-bf16 on --fwd-state-idle-stores on > $R/chk-is-on.json 2>/dev/null
