#!/usr/bin/env bash
# Seventeenth session, lead's third sitting (branch s17-mlaresc b08d1f4): the MLA f16 kernel with the last n words
# of each thread's staging of the next block moved after P x V (stageLate=n; 0 is the default). bench mla at 4K (the
# device check against the kernel's own scheme, vsF16Reference) and 1M, then hybrid TPOT. Own processes, A/B/A/B.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r3; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-170}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
M="$E node $C bench mla --json --cache-dtype int8 --unsafe-apis --f16 --context 4096,1048576 --int8-kernels f16 --int8-variants none"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 32 --context 1048576"
t m0a 40 $M
t m3a 40 $M --int8-f16 stageLate=3
t m6a 40 $M --int8-f16 stageLate=6
t m9a 40 $M --int8-f16 stageLate=9
t m0b 40 $M
t m3b 40 $M --int8-f16 stageLate=3
t m6b 40 $M --int8-f16 stageLate=6
t m9b 40 $M --int8-f16 stageLate=9
t d0a 40 $D
t d6a 40 $D --mla-int8-f16 stageLate=6
t d9a 40 $D --mla-int8-f16 stageLate=9
t d0b 40 $D
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
