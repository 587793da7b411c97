# sgm4, seventh session, sitting 1 (22:48 UTC, bundle of ebe0e08 = main at the session's start), H200.
# stages1.json ran during a slow burst (dp4a's row 1.556 normal but the sgm rows 3-5x slow): quote stages2.
E="bash .device-sgm4/enter.sh"; C=".device-sgm4/app/cli.mjs"; B="node $C bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576"
$E $B --int8-kernels subgroup-matrix,dp4a --int8-variants sgm-stages > $OUT/stages1.json
$E $B --int8-kernels subgroup-matrix,dp4a --int8-variants sgm-stages --sweep-chunks 66,99 > $OUT/stages2.json
$E $B --int8-kernels subgroup-matrix --int8-sgm foldBarrier=false --int8-variants none --sweep-chunks 264 > $OUT/racy.json
