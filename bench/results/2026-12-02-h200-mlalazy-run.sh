#!/usr/bin/env bash
# mlalazy sitting (ninth session, issue #4): the lazy P x V form of the tensor-core MLA int8 kernel at 1M beside the
# default (wide). Run from the repository root on the device with carry [".device-mlalazy"] (this file is
# .device-mlalazy/run.sh there).
E="bash .device-mlalazy/enter.sh"; C=".device-mlalazy/app/cli.mjs"
M="$E node $C bench mla --json --unsafe-apis --cache-dtype int8"
t() { local s=$(date +%s); local n=$1; shift; timeout 60 "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; }
# 1. SGM_LAZY_VARIANTS at 1M (wide twice, lazy, lazy without flush, without prefetch, tau 0, stageSpread), rows of the
#    default and dp4a at 1M and 4K, every variant checked at 4K against the int8 reference and dp4a
t var1 $M --context 1048576,4096 --int8-variants sgm-lazy --sweep-chunks ''
# 2. lazy's own rows (per-kernel times) at 1M, 128K, 4K
t lazy $M --context 1048576,131072,4096 --int8-sgm lazy --int8-variants none --sweep-chunks ''
# 3. the diagnostic without the rescales' flush: its rows (per-kernel times) at 1M
t noflush $M --context 1048576 --int8-kernels subgroup-matrix --int8-sgm lazy,lazyFlush=false --int8-variants none --sweep-chunks ''
# 4. the variants again (bursts)
t var2 $M --context 1048576,4096 --int8-variants sgm-lazy --sweep-chunks ''
# 5. hybrid TPOT at 1M, batch 1, with the lazy form and with the default
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 1048576 --variants hybrid --cache-dtype int8 --check --unsafe-apis"
t dec-lazy $D --mla-int8-sgm lazy
t dec-default $D
cat $OUT/times.txt
for f in $OUT/*.err; do [ -s $f ] && { echo "== $f"; tail -c 600 $f; }; done
python3 .device-mlalazy/summary.py $OUT > $OUT/summary.txt 2>&1; head -c 9000 $OUT/summary.txt
