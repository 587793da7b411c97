#!/usr/bin/env bash
# ktcout sitting 5 (the command as run, machine warm right after sitting 4): padded 512-thread tensor-core output pass,
# --check at T=2048, then on and off at T=32768, each in its own process.
E="bash .device-ktcout/enter.sh"; C=".device-ktcout/app/cli.mjs"; A="--batch 1 --skip-recompute --skip-backward --dtype bf16 --unsafe-apis --json"; mkdir -p $OUT; timeout 30 $E node $C bench kda --T 2048 --check $A --fwd-tc16-output on --fwd-tc16-output-pad on --fwd-tc16-output-wg 512 > $OUT/chk-padw.json 2>/dev/null; timeout 30 $E node $C bench kda --T 32768 --profile $A --fwd-tc16-output on --fwd-tc16-output-pad on --fwd-tc16-output-wg 512 > $OUT/on-padw.json 2>/dev/null; timeout 30 $E node $C bench kda --T 32768 --profile $A --fwd-tc16-output off > $OUT/off2.json 2>/dev/null
