#!/usr/bin/env bash
# sgm3's three sittings (sixth session), as run (carry [".device-sgm3"]); budget used 59 + 91 + 157 s.
E="bash .device-sgm3/enter.sh"; C=".device-sgm3/app/cli.mjs"
M="$E node $C bench mla --json --unsafe-apis --cache-dtype int8 --int8-kernels subgroup-matrix,dp4a"
# 1: stage diagnostics of the quarter layout at the default 132 chunks (-> sgm3-stages1.json)
$M --context 1048576,131072,4096 --int8-sgm queryResident --int8-variants sgm-stages --sweep-chunks 66,264,528
# 2: the same at 264 chunks (-> sgm3-stages2-old264.json); the candidate and its stages (-> sgm3-stages2-new.json)
$M --context 1048576,4096 --int8-sgm queryResident --int8-variants sgm-stages --int8-variant-chunks 264 --sweep-chunks 132,264,528
$M --context 1048576,131072,4096 --int8-sgm queryResident,foldSpread,scorePad --int8-variants sgm-stages --sweep-chunks 132,264,132,264
# 3: hybrid TPOT at 1M, batch 1, tensor-core kernel vs dp4a; bench mla rows (-> sgm3-s3-{dec-sgm,dec-dp4a,mla}.json)
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 1048576 --variants hybrid --cache-dtype int8 --unsafe-apis"
$D --mla-int8-kernel subgroup-matrix --mla-int8-sgm queryResident,foldSpread,scorePad
$D
$M --context 1048576,131072 --int8-sgm queryResident,foldSpread,scorePad --int8-variants none --sweep-chunks 132
# Next (not run): what limits the new form, stages repeated to see past the bursts, and foldSpread / scorePad apart
#   $M --context 1048576,4096 --int8-sgm queryResident,foldSpread,scorePad --int8-variants sgm-stages --sweep-chunks ''   (twice)
#   $M --context 1048576,4096 --int8-sgm queryResident --int8-variants all --sweep-chunks ''   (INT8_VARIANTS: foldSpread, scorePad alone)
