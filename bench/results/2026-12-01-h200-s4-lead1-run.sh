#!/usr/bin/env bash
# Lead's sitting 1 (fourth session): KDA and decode targets from one bundle; each bench its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" | tee -a $OUT/times.txt; tail -c 3000 $R/$n.err | sed "s/^/$n: /" >> $OUT/errs.txt; }
t kda 120 $E node $C bench kda --json --profile
t kda32k 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute
t dec-hyb 100 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 4096,131072,1048576 --steps 8 --variants hybrid
t dec-hyb-i8 100 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 4096,131072,1048576 --steps 8 --variants hybrid --cache-dtype int8
t dec-mla 130 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 4096,131072,1048576 --steps 8 --variants all-MLA
t dec-mla-i8 70 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 1048576 --steps 8 --variants all-MLA --cache-dtype int8
python3 - <<'PY'
import json, os
O=os.environ['OUT']
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
k=g('kda'); print('kda', [(r.get('pass'), r.get('T'), round(r.get('ms',0),2)) for r in k.get('chunked',[])], [(r.get('batch'), round(r.get('us',0),1)) for r in k.get('decode',[])])
k=g('kda32k'); print('kda32k', [(r.get('pass'), r.get('T'), round(r.get('ms',0),2)) for r in k.get('chunked',[])], [(r.get('batch'), round(r.get('us',0),1)) for r in k.get('decode',[])])
for n in ('dec-hyb','dec-hyb-i8','dec-mla','dec-mla-i8'):
    d=g(n); print(n, [(r.get('context'), round(r.get('tpotMs',0),2), round(r.get('recordMs',0),2), round(r.get('hostMs',0) or 0,2), r.get('dispatchesPerStep')) for r in d.get('rows',[])])
print(open(O+'/times.txt').read())
PY
