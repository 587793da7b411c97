#!/usr/bin/env bash
# gemv10's sitting 2: eager prologues and per-kind sweep unrolls at 4K (profiled sweep, repeats), the check of the
# combination, then 1M off / combination.
D=.device-gemv10; E="bash $D/enter.sh"; C="$D/app/cli.mjs"
P="--preset kimi-linear-48b-a3b --json --steps 8 --variants hybrid --cache-dtype int8 --unsafe-apis"
OFF='"eagerPrologue":false,"gatedUnroll":4,"normGemvUnroll":4'
CMB='"eagerPrologue":true,"gatedUnroll":16,"normGemvUnroll":9'
S="[{\"label\":\"off\",$OFF},{\"label\":\"eager\",\"eagerPrologue\":true,\"gatedUnroll\":4,\"normGemvUnroll\":4},{\"label\":\"gU16\",\"eagerPrologue\":false,\"gatedUnroll\":16,\"normGemvUnroll\":4},{\"label\":\"gU8\",\"eagerPrologue\":false,\"gatedUnroll\":8,\"normGemvUnroll\":4},{\"label\":\"nU9\",\"eagerPrologue\":false,\"gatedUnroll\":4,\"normGemvUnroll\":9},{\"label\":\"combo\",$CMB},{\"label\":\"off2\",$OFF},{\"label\":\"eager2\",\"eagerPrologue\":true,\"gatedUnroll\":4,\"normGemvUnroll\":4},{\"label\":\"combo2\",$CMB}]"
date +%T
timeout 120 $E node $C bench decode $P --context 4096 --profile --check --eager-prologue --gated-unroll 16 --norm-gemv-unroll 9 --sweep "$S" > $OUT/sweep4k.json 2> $OUT/sweep4k.err || echo "sweep4k rc $?"
date +%T
S2="[{\"label\":\"off\",$OFF},{\"label\":\"combo\",$CMB},{\"label\":\"off2\",$OFF},{\"label\":\"combo2\",$CMB}]"
timeout 80 $E node $C bench decode $P --context 1048576 --sweep "$S2" > $OUT/sweep1m.json 2> $OUT/sweep1m.err || echo "sweep1m rc $?"
date +%T
for f in $OUT/sweep4k.json $OUT/sweep1m.json; do $E node $D/sum.cjs $f 2>&1 | head -40; done
for f in $OUT/*.err; do echo "== $f"; tail -n 3 $f; done
