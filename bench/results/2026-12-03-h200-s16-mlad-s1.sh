#!/usr/bin/env bash
# Sixteenth session, mlad sitting 1: the direct f16 MLA decode (f16DirectPlan.ts) against the int8 f16 kernel on the
# same values (bench mla --cache-dtype f16), 48B shapes, batch 1: 1M first, then checks at an awkward 4K length
# (partial last tile) and 4K / 128K timings.
E="bash .device-mlad/enter.sh"; C=".device-mlad/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-170}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
M="$E node $C bench mla --json --cache-dtype f16 $U --kernel-times"
V="tb=64;tb=64,q=regs;tb=32,q=regs;tb=32;tb=16,q=regs;tb=64,chunks=264"
t m1m 80 $M --context 1048576 --f16-direct "$V"
t chk4093 40 $M --context 4093 --f16-direct "$V" --reps 2 --trials 2
t m128k 40 $M --context 131072,4096 --f16-direct "$V"
# summary lines
for f in $R/*.json; do node -e '
const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
for (const d of r.decode) console.log(process.argv[1].split("/").pop(), d.context, d.kernel, JSON.stringify({tb:d.tb,q:d.q,chunks:d.chunks}), d.rep, d.ms, JSON.stringify(d.kernelsMs??{}));
for (const c of r.checks) console.log("check", JSON.stringify(c));' $f >> $OUT/times.txt 2>&1; done
