#!/usr/bin/env bash
# Lead's final sitting (eighth session), main cdbd337 (every branch merged: kstate3, kgram, kout, suite, kmoe, kgram2, kgram3): every target, each bench in its own process;
# the full KDA bench twice (T ascending as shipped, then descending) with the GPU's clocks sampled, to see whether
# the T=32768 forward's slower reading in the full bench follows the earlier runs.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 150 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"
t k-def 30 $K
t k-fb 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
t dec-i8 90 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 --check --unsafe-apis
t k-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t dec-max 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 --unsafe-apis
(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv -lms 200 > $R/smi.csv 2>&1) & SMI=$!
echo "kda start $(date +%T.%N)" >> $R/marks.txt
t kda 90 $E node $C bench kda --json
echo "kda-desc start $(date +%T.%N)" >> $R/marks.txt
t kda-desc 90 $E node $C bench kda --json --T 32768,8192,2048
echo "end $(date +%T.%N)" >> $R/marks.txt
kill $SMI 2>/dev/null; pkill -f "nvidia-smi --query" 2>/dev/null
t dec-prof 45 $D --context 4096,1048576 --variants hybrid --cache-dtype int8 --unsafe-apis --profile
t dec-bf16 60 $D --context 4096,131072,1048576 --variants hybrid
t dec-mla 60 $D --context 1048576 --variants all-MLA
t k-def2 30 $K
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('k-def','k-fb','k-check','kda','kda-desc','k-def2'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:600])
    if k.get('backwardNewVsOld'): print(n, 'bwd', json.dumps(k['backwardNewVsOld']))
    if k.get('decode'): print(n, 'decode', [(r.get('batch'), round(r.get('us',0),1)) for r in k['decode']])
for n in ('dec-i8','dec-max','dec-prof','dec-bf16','dec-mla'):
    d=g(n)
    if d.get('check'): print(n, 'check', json.dumps(d['check'])[:500])
    for r in d.get('rows',[]):
        p=r.get('profile')
        print(n, r.get('model'), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),3), round(r.get('hostMs') or 0,2), r.get('dispatchesPerStep'), p and p.get('gpuMs'))
        if p: print('   ', ' '.join(f"{k['name']}={k['ms']}/{k['dispatches']}" for k in p['kernels'])[:900])
    for x in ('batchLimited','ratios'):
        if d.get(x): print(n, x, json.dumps(d[x]))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-900; cat $OUT/times.txt; cat $R/marks.txt; wc -l $R/smi.csv 2>/dev/null
