#!/usr/bin/env bash
# Lead's third sitting (fifth session): training after the pool keeps its working set (keepWorkingSet on held bytes).
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; tail -c 1500 $R/$n.err | grep -v Warning | sed "s/^/  $n: /" >> $OUT/times.txt; }
T="$E node $C bench train --preset train-100m --seq-len 4096 --steps 5 --warmup 3 --json"
t tr-muon 60 $T
t tr-adamw 60 $T --optimizer adamw
t tr-b4 150 $T --batch 4 --steps 3 --warmup 3
t tr-b4-adamw 150 $T --batch 4 --steps 3 --warmup 3 --optimizer adamw
python3 - > $OUT/summary.txt <<'PY'
import json
def g(n):
    try: return json.load(open(f'/tmp/r/{n}.json'))
    except Exception as e: return {}
for n in ('tr-muon','tr-adamw','tr-b4','tr-b4-adamw'):
    d=g(n); print(n, [(r.get('model'), r.get('batch'), round(r.get('stepMs',0),1), [round(x,1) for x in r.get('stepMsTrials',[])], round(r.get('tflops',0),2), round(r.get('tokensPerS',0)), r.get('buffersCreatedPerTimedStep'), r.get('bindGroupMissesPerTimedStep')) for r in d.get('rows',[])])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt $OUT/times.txt
