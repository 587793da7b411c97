#!/usr/bin/env bash
# ktcstate sitting 1 (run from the main checkout, the bundle carried as .device-ktcstate; this file as .device-ktcstate/run.sh): the tc16 state pass (--fwd-tc16-state on) against off, each in its own process, alternated;
# its skeleton (--fwd-tc16-state-probe skeleton: loads, staging, MMAs, barriers without the exact math) and nomma (the
# exact kernel without its fragment loads and MMAs); --check at
# T=2048 (vs f32 forward, vs recurrent, vs tc16 off).
E="bash .device-ktcstate/enter.sh"; C=".device-ktcstate/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 120 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis"
t check-on 40 $CK --fwd-tc16-state on
t on1 30 $K --fwd-tc16-state on
t off1 30 $K --fwd-tc16-state off
t skel 30 $K --fwd-tc16-state on --fwd-tc16-state-probe skeleton
t nomma 30 $K --fwd-tc16-state on --fwd-tc16-state-probe nomma
t on2 30 $K --fwd-tc16-state on
t off2 30 $K --fwd-tc16-state off
t check-odd 40 $E node $C bench kda --json --T 2047 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --fwd-tc16-state on
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('check-on','on1','off1','skel','nomma','on2','off2','check-odd'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
cat $OUT/summary.txt | cut -c1-1200; cat $OUT/times.txt
