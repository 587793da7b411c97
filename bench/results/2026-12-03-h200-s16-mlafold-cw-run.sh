#!/usr/bin/env bash
# NOT RUN (mlafold had its one sitting): for a later sitting, the MLA cache write folded into the absorption/query
# head_gemv (--mla-fold-cache-write on, with the query fold, the default) against the query fold alone (off).
# Hybrid 48B, int8 cache, batch 1, TPOT at 4K and 1M in one process, on / off A/B/A/B; --check at 4K with it on
# (mlaFoldQueryLogitsMaxRelDiff: against neither fold, expect 0); --profile at 4K (expect 186 dispatches, 193 off).
E="bash .device-mlafold/enter.sh"; C=".device-mlafold/app/cli.mjs"; R=/tmp/r-mlafold-cw; mkdir -p $R; START=$(date +%s)
$E true >/dev/null 2>&1
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-185} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 $U"
t cw-on-a 40 $D --steps 32 --context 4096,1048576 --mla-fold-cache-write on
t cw-off-a 40 $D --steps 32 --context 4096,1048576 --mla-fold-cache-write off
t cw-chk 50 $D --steps 8 --context 4096 --check --mla-fold-cache-write on
t cw-on-b 40 $D --steps 32 --context 4096,1048576 --mla-fold-cache-write on
t cw-off-b 40 $D --steps 32 --context 4096,1048576 --mla-fold-cache-write off
t cw-prof 30 $D --steps 16 --context 4096 --profile --mla-fold-cache-write on
python3 .device-mlafold/summary.py $R > $OUT/summary.txt 2>&1
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
