#!/usr/bin/env bash
# train2's device sitting: new defaults vs the old paths (all four flags), muon with profile and adamw.
C=.device-train2/app/cli.mjs
B="node $C bench train --preset train-100m --seq-len 4096 --steps 3 --warmup 1 --json"
OLD="--kda-param-reduce single --sum-columns off --elementwise-vec4 off --linear-accumulate add"
t0=$(date +%s)
run() { local name=$1; shift; local s=$(date +%s); timeout 100 $B "$@" > $OUT/$name.json 2> $OUT/$name.err; echo "$name rc=$? $(( $(date +%s) - s ))s"; }
run new-adamw --optimizer adamw
run old-adamw --optimizer adamw $OLD
run new-muon-profile --profile
run old-muon-profile --profile $OLD
run new-adamw-linadd --optimizer adamw --linear-accumulate add
run new-adamw-scalar --optimizer adamw --elementwise-vec4 off
echo total $(( $(date +%s) - t0 ))s
for f in $OUT/*.json; do echo "== $f"; grep -hE '"model"|"stepMs"|"tflops"|"loss"|"gradNorm"' $f | grep -v '"tflops": [0-9.]*}' | head -12; done
