#!/usr/bin/env bash
# Lead's sitting 1 (fifth session): baseline of merged main (kda2 backward, bind-group fix) for all three targets.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" | tee -a $OUT/times.txt; tail -c 2000 $R/$n.err | grep -v Warning | sed "s/^/$n: /" >> $OUT/errs.txt; }
t kda 120 $E node $C bench kda --json --profile
t kda32k 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
T="$E node $C bench train --preset train-100m --seq-len 4096 --steps 3 --warmup 1 --json"
t tr-muon 60 $T
t tr-muon2 60 $T
t tr-adamw 60 $T --optimizer adamw
t tr-muon-prof 90 $T --profile
t dec-hyb-i8 100 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 4096,1048576 --steps 8 --variants hybrid --cache-dtype int8
python3 - <<'PY'
import json, os
O=os.environ['OUT']
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('kda','kda32k'):
    k=g(n); print(n, [(r.get('pass'), r.get('T'), round(r.get('ms',0),2)) for r in k.get('chunked',[])], [(r.get('batch'), round(r.get('us',0),1)) for r in k.get('decode',[])])
for n in ('tr-muon','tr-muon2','tr-adamw','tr-muon-prof'):
    d=g(n); print(n, [(r.get('model'), round(r.get('stepMs',0),1), [round(x,1) for x in r.get('stepMsTrials',[])], round(r.get('tflops',0),2), r.get('buffersCreatedPerTimedStep'), r.get('bindGroupMissesPerTimedStep')) for r in d.get('rows',[])])
d=g('dec-hyb-i8'); print('dec-hyb-i8', [(r.get('context'), round(r.get('tpotMs',0),2), round(r.get('hostMs',0) or 0,2), r.get('dispatchesPerStep')) for r in d.get('rows',[])])
print(open(O+'/times.txt').read())
PY
