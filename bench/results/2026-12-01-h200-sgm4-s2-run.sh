#!/usr/bin/env bash
# sgm4 sitting 2 (seventh session). Run from the repository root on the device with carry [".device-sgm4"].
E="bash .device-sgm4/enter.sh"; C=".device-sgm4/app/cli.mjs"
M="$E node $C bench mla --json --unsafe-apis --cache-dtype int8"
t() { local s=$(date +%s); local n=$1; shift; timeout 100 "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; }
# 1. the candidates (SGM_WIDE_VARIANTS) at 1M beside the default and dp4a (rows at 1M, 128K, 4K), each checked at 4K
t wide $M --context 1048576,131072,4096 --int8-variants sgm-wide --sweep-chunks ''
# 2. the fastest exact one (relToMax 0 against dp4a at 4K): its rows at every context, its stages, chunks
BEST=$(python3 .device-sgm4/pick.py $OUT/wide.json); echo "best: '$BEST'" >> $OUT/times.txt
t best $M --context 1048576,131072,4096 --int8-sgm "$BEST" --int8-variants sgm-stages --sweep-chunks 132,264
# 3. the same without bounds checks (what robustness costs it)
t norobust $M --context 1048576 --int8-sgm "$BEST" --int8-variants none --sweep-chunks '' --disable-robustness
# 4. hybrid TPOT at 1M, batch 1: with it, and with the default kernel
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 1048576 --variants hybrid --cache-dtype int8 --check --unsafe-apis"
t dec-best $D --mla-int8-sgm "$BEST"
t dec-default $D
python3 .device-sgm4/summary.py $OUT > $OUT/summary.txt 2>&1
cat $OUT/times.txt; cat $OUT/summary.txt | cut -c1-300
# Next (not run; wide is now the default, so `{}` below means wide): the candidates again outside a burst, twice,
# then the fastest exact one's stages and TPOT:
#   $M --context 1048576,4096 --int8-variants sgm-wide --sweep-chunks ''        (twice, in separate processes)
#   $M --context 1048576,131072,4096 --int8-sgm wide,pvAhead,kvSlots,maxAhead,stageSpread,prefetch=false --int8-variants sgm-stages --sweep-chunks ''
#   $M --context 1048576 --int8-variants none --sweep-chunks '' --disable-robustness   (what bounds checks cost it)
