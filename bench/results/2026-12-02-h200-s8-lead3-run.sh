#!/usr/bin/env bash
# Lead's sitting 3 (eighth session, main cdbd337): the two rows of sitting 2 that read slow (bf16 hybrid at 1M 34.87 ms,
# int8 hybrid at 128K 33.44 ms) again, the bf16 one with its kernel profile. Output of the run:
#   bf16 131072 6.699 (host 3.09 ms; profiled GPU 7.55: mla_decode_tiled 2.77, moe gate_up 1.054, norm_gemv 0.859, down 0.669)
#   bf16 1048576 24.807 (host 3.17; profiled GPU 25.61: mla_decode_tiled 20.82, gate_up 1.055, norm_gemv 0.867, down 0.674)
#   i8 131072 5.192 (host 2.57)
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"; timeout 40 $D --context 131072,1048576 --variants hybrid --profile > $OUT/bf16.json 2>$OUT/bf16.err; timeout 30 $D --context 131072 --variants hybrid --cache-dtype int8 --unsafe-apis > $OUT/i8.json 2>$OUT/i8.err
