#!/usr/bin/env bash
# Sixteenth session, mlad sitting 2: the direct f16 MLA decode with several storage loads in flight a subgroup
# (batch, vBatch, kAhead), against the int8 f16 kernel on the same values (bench mla --cache-dtype f16), 48B shapes,
# batch 1: 1M first (each row timed twice, A B ... A B), diagnostics (a stage left out, no robustness), then checks at an
# awkward 4K length (partial last tile) and 128K / 4K timings.
E="bash .device-mlad/enter.sh"; C=".device-mlad/app/cli.mjs"; R=/tmp/rmlad; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-165}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
M="$E node $C bench mla --json --cache-dtype f16 $U --kernel-times"
V="tb=32,q=regs;tb=32,q=regs,batch=18,vBatch;tb=32,q=regs,batch=9,vBatch;tb=32,q=regs,batch=9,vBatch,kAhead;tb=32,q=regs,batch=6,vBatch;tb=64,batch=12,vBatch;tb=64,batch=6,vBatch;tb=64,batch=12,vBatch,kAhead;tb=16,q=regs,batch=9,vBatch;tb=16,q=regs,batch=9,vBatch,kAhead;tb=32,q=regs,batch=18,vBatch,kLeft;tb=32,q=regs,batch=18,vBatch,vLeft;tb=64,q=regs,batch=12,vBatch"
D="tb=32,q=regs,batch=18,vBatch;tb=32,q=regs,batch=18,vBatch,skip=scores;tb=32,q=regs,batch=18,vBatch,skip=pv;tb=32,q=regs;tb=32,q=regs,skip=scores;tb=32,q=regs,skip=pv"
t m1m 75 $M --context 1048576 --f16-direct "$V"
t diag1m 40 $M --context 1048576 --f16-direct "$D" --reps 3 --trials 3
t norob1m 35 $M --context 1048576 --f16-direct "tb=32,q=regs;tb=32,q=regs,batch=18,vBatch;tb=64,batch=12,vBatch" --reps 3 --trials 3 --disable-robustness
t chk4093 40 $M --context 4093 --f16-direct "$V" --reps 2 --trials 2
t m128k 40 $M --context 131072,4096 --f16-direct "$V" --reps 3 --trials 3
for f in $R/*.json; do /tmp/nodebin/node -e '
const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
for (const d of r.decode) console.log(process.argv[1].split("/").pop(), d.context, d.kernel, JSON.stringify({...d, context:undefined, kernel:undefined, trialsMs:undefined, kernelsMs:undefined, ms:undefined}), d.ms, JSON.stringify(d.kernelsMs??{}));
for (const c of r.checks) console.log("check", JSON.stringify(c));' $f >> $OUT/times.txt 2>&1 || true; done
