#!/usr/bin/env bash
# Fourteenth session, kfwd's sitting: intraGram's and the Kt pre-pass's workgroup memory declared as nested arrays,
# vec4<u32> or f32 instead of vec4<f32> (--fwd-gram-sm / --fwd-kt-sm; the same values), for what the driver's zeroing
# of it costs. Both kernels take the form in one run (their times are separate kernels). Each bench its own process,
# the forms in rotating order, then the T=2048 checks of each form.
E="bash .device-kfwd/enter.sh"; C=".device-kfwd/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 250 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
K16="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 $U"
CHK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U"
f() { echo "--fwd-gram-sm $1 --fwd-kt-sm $1"; }
t def-a 30 $K16
t nes-a 30 $K16 $(f nested)
t u32-a 30 $K16 $(f u32)
t f32-a 30 $K16 $(f f32)
t f32-b 30 $K16 $(f f32)
t u32-b 30 $K16 $(f u32)
t nes-b 30 $K16 $(f nested)
t def-b 30 $K16
t u32-c 30 $K16 $(f u32)
t def-c 30 $K16
t f32-c 30 $K16 $(f f32)
t nes-c 30 $K16 $(f nested)
t chk-nes 40 $CHK $(f nested)
t chk-u32 40 $CHK $(f u32)
t chk-f32 40 $CHK $(f f32)
t nes-d 30 $K16 $(f nested)
t def-d 30 $K16
t u32-d 30 $K16 $(f u32)
t f32-d 30 $K16 $(f f32)
t noinit 30 $K16 --dawn-toggles disable_workgroup_init
t def-e 30 $K16
