#!/usr/bin/env bash
# mlalazy2's second sitting (copied with pick.mjs into .device-mlalazy2/ as run2.sh; carry [".device-mlalazy2"]): the
# register-pressure rows (sgm-lazy-regs: lazy, one digit, one digit without the prefetch) at 4K, with lazyDiag.
E="bash .device-mlalazy2/enter.sh"; C=".device-mlalazy2/app/cli.mjs"
M="$E node $C bench mla --json --unsafe-apis --cache-dtype int8 --int8-kernels subgroup-matrix"
timeout 40 $M --sweep-chunks '' --context 4096 --int8-variants sgm-lazy-regs > $OUT/regs.json 2> $OUT/regs.err
echo "regs rc=$?"; tail -c 300 $OUT/regs.err
$E node .device-mlalazy2/pick.mjs $OUT/regs.json
