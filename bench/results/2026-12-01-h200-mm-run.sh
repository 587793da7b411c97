#!/usr/bin/env bash
# mm's sitting (fifth session): old paths (tuned matmul plan, split MoE outer products, 4-row MoE threads, atomic
# MoE plan) against the new ones (wave matmul plan + the new MoE defaults), batch 1/2/4, Muon/AdamW, hybrid/all-MLA.
D=.device-mm; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" | tee -a $OUT/times.txt; tail -c 1500 $R/$n.err | grep -v Warning | sed "s/^/$n: /" >> $OUT/errs.txt; }
OLD="--matmul-plan tuned --moe-outer split --moe-rows-thread 4 --moe-plan atomic"
NEW="--matmul-plan wave"
T="$E node $C bench train --preset train-100m --seq-len 4096 --json"
t b1-muon-old-prof 40 $T $OLD --profile
t b1-muon-new-prof 40 $T $NEW --profile
t b4-muon-old 40 $T $OLD --batch 4 --steps 2
t b4-muon-new 40 $T $NEW --batch 4 --steps 2
t b2-muon-old 30 $T $OLD --batch 2
t b2-muon-new 30 $T $NEW --batch 2
t b1-adamw-old 20 $T $OLD --optimizer adamw
t b1-adamw-new 20 $T $NEW --optimizer adamw
t b1-muon-new-w96 15 $T $NEW --variants hybrid --matmul-wave-tile 128x96
t b1-muon-new-w192 15 $T $NEW --variants hybrid --matmul-wave-tile 128x192
t b4-adamw-new 40 $T $NEW --batch 4 --steps 2 --optimizer adamw
t b2-adamw-new 30 $T $NEW --batch 2 --optimizer adamw
t shapes 25 $E node $C bench matmul --json --reps 5 --shapes 4096x768x768:NT,4096x768x768:NN,32000x768x1023:TN,4096x8x768:NT
python3 - <<'PY'
import json, os
O=os.environ['OUT']
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in sorted(f[:-5] for f in os.listdir(O) if f.endswith('.json') and f != 'shapes.json'):
    d=g(n); print(n, [(r.get('model'), r.get('batch'), round(r.get('stepMs',0),1), [round(x,1) for x in r.get('stepMsTrials',[])], round(r.get('tflops',0),2), round(r.get('loss',0),6), round(r.get('gradNorm',0),6)) for r in d.get('rows',[])])
    for r in d.get('rows',[]):
        gp=r.get('gradientsProfile')
        if gp: print('  ', r['model'], 'fwd+bwd', gp.get('gpuMs'), [(k['name'], k['ms']) for k in gp.get('kernels',[])[:12]])
        ns=r.get('newtonSchulzProfile')
        if ns: print('  ', r['model'], 'NS', ns.get('gpuMs'))
s=g('shapes')
for x in s.get('summary',[]): print(x)
for x in s.get('rows',[]):
    if 'wave' in x.get('config','') or x.get('config') in ('auto','64x192','128x96','128x192'): print(x.get('shape'), x.get('config'), round(x.get('tflops',0),1), x.get('relDiffVsAuto'), x.get('error'))
print(open(O+'/times.txt').read())
PY
