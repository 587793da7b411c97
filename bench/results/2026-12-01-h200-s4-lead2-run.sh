#!/usr/bin/env bash
# Lead's sitting 2: training A/B (Muon new vs old flags, twice), AdamW, int8-cache decode and batch-limited figures.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; tail -c 1500 $R/$n.err | grep -v Warning | sed "s/^/  $n: /" >> $OUT/times.txt; }
T="$E node $C bench train --preset train-100m --seq-len 4096 --steps 3 --warmup 1 --json"
OLD="--kda-param-reduce single --sum-columns off --elementwise-vec4 off --linear-accumulate add"
t tr-muon-new 60 $T
t tr-muon-old 60 $T $OLD
t tr-muon-new2 60 $T
t tr-adamw-new 60 $T --optimizer adamw
t dec-hyb-i8 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 4096,131072,1048576 --steps 8 --variants hybrid --cache-dtype int8
t bl-hyb-i8 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 1048576 --max-batch --memory-gb 135 --steps 4 --variants hybrid --cache-dtype int8
t bl-mla-i8 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --context 1048576 --max-batch --memory-gb 135 --steps 4 --variants all-MLA --cache-dtype int8
python3 - <<'PY'
import json, os
O=os.environ['OUT']
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('tr-muon-new','tr-muon-old','tr-muon-new2','tr-adamw-new'):
    d=g(n); print(n, [(r['model'], round(r['stepMs'],1), [round(x,1) for x in r.get('stepMsTrials',[])], round(r['tflops'],2), r.get('buffersCreatedPerTimedStep')) for r in d.get('rows',[])])
for n in ('dec-hyb-i8','bl-hyb-i8','bl-mla-i8'):
    d=g(n); print(n, [(r.get('context'), r.get('batch'), round(r.get('tpotMs',0),2), round(r.get('hostMs',0) or 0,2)) for r in d.get('rows',[])], d.get('batchLimited'))
print(open(O+'/times.txt').read())
PY
