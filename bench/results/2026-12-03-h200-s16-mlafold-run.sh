#!/usr/bin/env bash
# Sixteenth session, mlafold: MLA's f16 query made by the W_uk absorption's head_gemv (--mla-fold-query on) against
# its own dispatch (off). Hybrid 48B, int8 cache, batch 1, TPOT at 4K and 1M (both contexts in one process), fold
# on / off in separate processes A/B/A/B/A/B; --check at 4K with the fold on (mlaFoldQueryLogitsMaxRelDiff: the
# default step against the other way); one --profile at 4K on and off (dispatch counts, per-kernel ms).
E="bash .device-mlafold/enter.sh"; C=".device-mlafold/app/cli.mjs"; R=/tmp/r-mlafold; mkdir -p $R; START=$(date +%s)
$E true >/dev/null 2>&1
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-185} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 $U"
t on-a 40 $D --steps 32 --context 4096,1048576 --mla-fold-query on
t off-a 40 $D --steps 32 --context 4096,1048576 --mla-fold-query off
t chk-on 50 $D --steps 8 --context 4096 --check --mla-fold-query on
t on-b 40 $D --steps 32 --context 4096,1048576 --mla-fold-query on
t off-b 40 $D --steps 32 --context 4096,1048576 --mla-fold-query off
t prof-on 30 $D --steps 16 --context 4096 --profile --mla-fold-query on
t prof-off 30 $D --steps 16 --context 4096 --profile --mla-fold-query off
t on-c 40 $D --steps 32 --context 4096,1048576 --mla-fold-query on
t off-c 40 $D --steps 32 --context 4096,1048576 --mla-fold-query off
python3 .device-mlafold/summary.py $R > $OUT/summary.txt 2>&1
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
