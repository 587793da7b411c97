#!/usr/bin/env bash
# Seventeenth session, lead's first sitting (main 713580a, the sixteenth session's final code): diagnostics for
# #4's hybrid TPOT at 1M. What the bounds clamps cost the whole decode step (--disable-robustness, Dawn's unsafe
# toggle: a diagnostic, never a default) and one submit a step (--dispatches-per-submit 256) against 128.
# Each bench in its own process, A/B/A/B.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r1; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-170}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid"
t base-a 40 $D --steps 32 --context 4096,1048576
t norob-a 40 $D --steps 32 --context 4096,1048576 --disable-robustness
t sub256-a 40 $D --steps 32 --context 4096,1048576 --dispatches-per-submit 256
t base-b 40 $D --steps 32 --context 4096,1048576
t norob-b 40 $D --steps 32 --context 4096,1048576 --disable-robustness
t sub256-b 40 $D --steps 32 --context 4096,1048576 --dispatches-per-submit 256
t prof-norob 40 $D --steps 16 --context 4096 --profile --disable-robustness
t prof-base 40 $D --steps 16 --context 4096 --profile
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
