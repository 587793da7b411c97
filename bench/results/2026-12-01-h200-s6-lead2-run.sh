#!/usr/bin/env bash
# Lead's final sitting (sixth session): every open target on the merged code, each bench in its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 400 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 1200 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t kda32k 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
t kda 90 $E node $C bench kda --json
t kda-check 60 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"
t dec-hyb-i8 120 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 --check --unsafe-apis
t dec-hyb-i8-dp4a 100 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 --mla-int8-kernel dp4a
t dec-hyb 100 $D --context 4096,131072,1048576 --variants hybrid
t dec-mla 100 $D --context 1048576 --variants all-MLA
t dec-max 120 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 --unsafe-apis
t tr-adamw 60 $E node $C bench train --preset train-100m --seq-len 4096 --steps 5 --warmup 3 --json --optimizer adamw
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('kda32k','kda','kda-check'):
    k=g(n); print(n, [(r.get('pass'), r.get('T'), round(r.get('ms',0),3)) for r in k.get('chunked',[])], [(r.get('batch'), round(r.get('us',0),1)) for r in k.get('decode',[])])
    for r in k.get('chunked',[]):
        if r.get('kernelsMs'): print('  ', r['pass'], {a: round(b,3) for a,b in r['kernelsMs'].items()})
        if r.get('check'): print('  check', r['pass'], json.dumps(r['check'])[:600])
        if r.get('bwdCheck'): print('  bwdCheck', json.dumps(r['bwdCheck'])[:600])
for n in ("dec-hyb-i8","dec-hyb-i8-dp4a","dec-hyb","dec-mla","dec-max"):
    d=g(n); print(n, d.get("mlaInt8Kernel"), [(r.get("variant"), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),2), round(r.get('hostMs',0) or 0,2), r.get('dispatchesPerStep')) for r in d.get('rows',[])])
    for k in ('check','batchLimited','ratio','ratios'):
        if d.get(k) is not None: print('  ', k, json.dumps(d[k])[:800])
d=g('tr-adamw'); print('tr-adamw', [(r.get('model'), r.get('batch'), round(r.get('stepMs',0),1), round(r.get('tflops',0),2)) for r in d.get('rows',[])])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt $OUT/times.txt
