#!/usr/bin/env bash
# Twelfth session, gcfuse, sitting 2: where the gc prologue's time goes (bf16, --unsafe-apis --f16, T=32768, B=1,
# H=16, d=128): the prologue on, without each part (--fwd-gram-gc-probe all|fence|walk|loads: wrong results, timing
# only), tile 0's gc from workgroup memory (--fwd-gram-gc-tile0 on), the walk loading g itself (--fwd-gram-gc-direct
# on), and off (the gc pass); --check at T=2048 for the two variants. Each bench its own process.
E="bash .device-gcfuse/enter.sh"; C=".device-gcfuse/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 150 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis --f16"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --f16"
P="--fwd-gram-gc-prologue on"
t b-on 30 $K $P
t b-all 30 $K $P --fwd-gram-gc-probe all
t b-fence 30 $K $P --fwd-gram-gc-probe fence
t b-walk 30 $K $P --fwd-gram-gc-probe walk
t b-loads 30 $K $P --fwd-gram-gc-probe loads
t b-t0 30 $K $P --fwd-gram-gc-tile0 on
t b-dir 30 $K $P --fwd-gram-gc-direct on
t b-off 30 $K --fwd-gram-gc-prologue off
t check-t0 45 $CK $P --fwd-gram-gc-tile0 on
t check-dir 45 $CK $P --fwd-gram-gc-direct on
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ['b-on','b-all','b-fence','b-walk','b-loads','b-t0','b-dir','b-off','check-t0','check-dir']:
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'].get('gramGcVsPass')), json.dumps(r['check'].get('vsF32')))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-600; cat $OUT/times.txt
