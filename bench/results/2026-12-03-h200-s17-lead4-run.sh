#!/usr/bin/env bash
# Seventeenth session, lead's fourth sitting (branch s17-mlaresc): stageLate with its barrier D (the third sitting's
# form raced). bench mla at 4K (device check) and 1M, all words late (9), 5 late, 9 late with ahead 4, against the
# default; then hybrid TPOT at 1M with the best form and --check at 4K. Own processes, A/B/A/B.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r4; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-150}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
M="$E node $C bench mla --json --cache-dtype int8 --unsafe-apis --f16 --context 4096,1048576 --int8-kernels f16 --int8-variants none"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid"
t m0a 40 $M
t m9a 40 $M --int8-f16 stageLate=9
t m5a 40 $M --int8-f16 stageLate=5
t m9x4a 40 $M --int8-f16 stageLate=9,ahead=4
t m0b 40 $M
t m9b 40 $M --int8-f16 stageLate=9
t m5b 40 $M --int8-f16 stageLate=5
t d9a 40 $D --steps 32 --context 1048576 --mla-int8-f16 stageLate=9
t d0a 40 $D --steps 32 --context 1048576
t chk9 40 $D --steps 8 --context 4096 --check --mla-int8-f16 stageLate=9
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
