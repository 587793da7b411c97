#!/usr/bin/env bash
# ktcstate sitting 3 (run from the main checkout as .device-ktcstate/run.sh, the bundle carried as .device-ktcstate):
# the tc16 state pass as it now stands (bit scales by default, Kb's row max as a u32 subgroupMax) against off, each
# twice in its own process, alternated; without the Kb row max (what the u32 reduction still costs); --check at
# T=2048 and T=65.
E="bash .device-ktcstate/enter.sh"; C=".device-ktcstate/app/cli.mjs"; R=/tmp/rktc3; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 100 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --fwd-tc16-state on"
t on1 30 $K --fwd-tc16-state on
t off1 30 $K --fwd-tc16-state off
t nokbmax 30 $K --fwd-tc16-state on --fwd-tc16-state-probe nokbmax
t on2 30 $K --fwd-tc16-state on
t off2 30 $K --fwd-tc16-state off
t check2048 40 $CK --T 2048
t check65 40 $CK --T 65
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/rktc3'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('on1','off1','nokbmax','on2','off2','check2048','check65'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
cat $OUT/summary.txt | cut -c1-1200; cat $OUT/times.txt
