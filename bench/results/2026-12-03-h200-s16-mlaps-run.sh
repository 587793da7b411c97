#!/usr/bin/env bash
# Sixteenth session, mlaps (one sitting): the f16 MLA kernel's producer / consumer form (int8F16Plan.ts producers)
# against the default at 1M (bench mla --int8-variants f16-s16ps: default, ps4, default, ps4, ps8, ps4 split 10/2/6,
# ps2, ps4 ahead 4, default), its device checks (each variant against the scheme's reference and against the
# default's output: vsF16Default) at awkward lengths, the 1M set again, then hybrid TPOT A/B/A/B and bench decode --check.
E="bash .device-mlaps/enter.sh"; C=".device-mlaps/app/cli.mjs"; R=/tmp/rmlaps; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-170}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
M="$E node $C bench mla --json --cache-dtype int8 $U --int8-kernels f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --cache-dtype int8 $U"
t m1m-a 60 $M --sweep-chunks 132 --context 1048576 --int8-variants f16-s16ps
t chk4093 40 $M --context 4093 --int8-variants f16-s16ps
t chk1000 30 $M --context 1000 --int8-variants f16-s16ps
t chk65 30 $M --context 65 --int8-variants f16-s16ps
t chk7 30 $M --context 7 --int8-variants f16-s16ps
t m1m-b 60 $M --sweep-chunks 132 --context 1048576 --int8-variants f16-s16ps
t d1m-def-a 40 $D --steps 32 --context 1048576 --variants hybrid
t d1m-ps4-a 40 $D --steps 32 --context 1048576 --variants hybrid --mla-int8-f16 producers=4
t d1m-def-b 40 $D --steps 32 --context 1048576 --variants hybrid
t d1m-ps4-b 40 $D --steps 32 --context 1048576 --variants hybrid --mla-int8-f16 producers=4
t dchk-ps4 40 $D --check --steps 8 --context 4096 --variants hybrid --mla-int8-f16 producers=4
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
