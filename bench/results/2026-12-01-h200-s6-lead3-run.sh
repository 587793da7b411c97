#!/usr/bin/env bash
# Lead's sitting 3 (sixth session): the two rows of sitting 2 far off their earlier values, again.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 1200 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t kda32k 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"
t dec-hyb-i8 90 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 --unsafe-apis
t dec-hyb-i8-prof 90 $D --context 1048576 --variants hybrid --cache-dtype int8 --unsafe-apis --profile
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
k=g('kda32k'); print('kda32k', [(r.get('pass'), r.get('T'), round(r.get('ms',0),3), [round(x,2) for x in (r.get('trials') or [])]) for r in k.get('chunked',[])])
for r in k.get('chunked',[]):
    if r.get('kernelsMs'): print('  ', r['pass'], {a: round(b,3) for a,b in r['kernelsMs'].items()})
for n in ('dec-hyb-i8','dec-hyb-i8-prof'):
    d=g(n); print(n, d.get('mlaInt8Kernel'), [(r.get('context'), r.get('batch'), round(r.get('tpotMs',0),2), r.get('tpotMsTrials') or r.get('stepMsTrials'), round(r.get('hostMs',0) or 0,2)) for r in d.get('rows',[])])
    for r in d.get('rows',[]):
        p=r.get('profile') or r.get('kernelsMs')
        if p: print('  profile', json.dumps(p)[:900])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt $OUT/times.txt
