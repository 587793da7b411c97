#!/usr/bin/env bash
# ktcstate sitting 2 (run from the main checkout as .device-ktcstate/run.sh, the bundle carried as .device-ktcstate):
# where the exact math's 4.5 ms over the skeleton goes: the exact kernel against itself with Kb's row maxima
# (subgroupMax), the column maxima (shuffles) or Kt's channel maxima left out, and with the scales from the f32 bits
# (--fwd-tc16-state-bit-scale on) instead of frexp / ldexp; off once; --check of the bit-scale form.
E="bash .device-ktcstate/enter.sh"; C=".device-ktcstate/app/cli.mjs"; R=/tmp/rktc2; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 100 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
t on 30 $K --fwd-tc16-state on
t bits 30 $K --fwd-tc16-state on --fwd-tc16-state-bit-scale on
t nokbmax 30 $K --fwd-tc16-state on --fwd-tc16-state-probe nokbmax
t nocolmax 30 $K --fwd-tc16-state on --fwd-tc16-state-probe nocolmax
t noktmax 30 $K --fwd-tc16-state on --fwd-tc16-state-probe noktmax
t bits-nokbmax 30 $K --fwd-tc16-state on --fwd-tc16-state-bit-scale on --fwd-tc16-state-probe nokbmax
t off 30 $K --fwd-tc16-state off
t check-bits 40 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --fwd-tc16-state on --fwd-tc16-state-bit-scale on
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/rktc2'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('on','bits','nokbmax','nocolmax','noktmax','bits-nokbmax','off','check-bits'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
cat $OUT/summary.txt | cut -c1-1200; cat $OUT/times.txt
