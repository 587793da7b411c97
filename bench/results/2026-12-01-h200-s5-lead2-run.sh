#!/usr/bin/env bash
# Lead's final sitting (fifth session): every target on the merged code, each bench in its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; tail -c 1500 $R/$n.err | grep -v Warning | sed "s/^/  $n: /" >> $OUT/times.txt; }
t kda32k 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
t kda 120 $E node $C bench kda --json
t kda-check 60 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
T="$E node $C bench train --preset train-100m --seq-len 4096 --steps 5 --warmup 3 --json"
t tr-muon 90 $T --profile
t tr-adamw 60 $T --optimizer adamw
t tr-b4 150 $T --batch 4 --steps 3 --warmup 2
t tr-b4-adamw 150 $T --batch 4 --steps 3 --warmup 2 --optimizer adamw
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"
t dec-hyb-i8 100 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8
t dec-hyb 100 $D --context 4096,131072,1048576 --variants hybrid
t dec-mla 130 $D --context 1048576 --variants all-MLA
python3 - > $OUT/summary.txt <<'PY'
import json, os
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('kda32k','kda','kda-check'):
    k=g(n); print(n, [(r.get('pass'), r.get('T'), round(r.get('ms',0),2)) for r in k.get('chunked',[])], [(r.get('batch'), round(r.get('us',0),1)) for r in k.get('decode',[])])
    for r in k.get('chunked',[]):
        if r.get('kernelsMs'): print('  ', r['pass'], {a: round(b,2) for a,b in r['kernelsMs'].items()})
for n in ('tr-muon','tr-adamw','tr-b4','tr-b4-adamw'):
    d=g(n); print(n, [(r.get('model'), r.get('batch'), round(r.get('stepMs',0),1), [round(x,1) for x in r.get('stepMsTrials',[])], round(r.get('tflops',0),2), round(r.get('tokensPerS',0)), r.get('buffersCreatedPerTimedStep'), r.get('bindGroupMissesPerTimedStep')) for r in d.get('rows',[])])
for n in ('dec-hyb-i8','dec-hyb','dec-mla'):
    d=g(n); print(n, [(r.get('context'), round(r.get('tpotMs',0),2), round(r.get('hostMs',0) or 0,2), r.get('dispatchesPerStep')) for r in d.get('rows',[])])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt $OUT/times.txt
