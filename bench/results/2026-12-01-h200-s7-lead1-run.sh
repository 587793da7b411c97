#!/usr/bin/env bash
# Lead's sitting 1 (seventh session) on main 5140941: the merged defaults (two-pass intra, tensor-core attention
# `wide`, KDA gate fold) and the variants the engineers could not time (intraWU uniform loads, sgm4's options,
# decrest2's sweep), each bench in its own process, elapsed-time guard.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 330 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
t kda32k 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
t kda-uni 45 $K --fwd-intra-wu-loads uniform
t kda-one 45 $K --fwd-intra-two-pass off
t kda-nr 45 $K --disable-robustness
t kda-check 60 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t kda-checkuni 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-intra-wu-loads uniform
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 --unsafe-apis"
X="--context 4096,131072,1048576 --steps 8"
t dec-new 90 $D $X --check
t dec-start 70 $D $X --no-fold-kda-gate --mla-int8-sgm wide=false
t mla-wide 100 $E node $C bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576,4096 --int8-variants sgm-wide --sweep-chunks ''
t dec-prof 60 $D --context 1048576 --steps 8 --profile
S='[{"label":"base","foldKdaGate":false},{"label":"new"},{"label":"pad100","padDispatches":100},{"label":"l128","moeLanes":[32,128]},{"label":"l128r16","moeLanes":[32,128],"moeRows":[16,2]},{"label":"r16","moeRows":[16,8]},{"label":"gu2","moeUnrollGateUp":2},{"label":"ng16","normGemvRows":16},{"label":"ng32","normGemvRows":32},{"label":"u8","gemvUnroll":8},{"label":"new-again"}]'
t dec-sweep 100 $D --context 4096 --steps 16 --profile --sweep "$S"
t dec-max 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 --unsafe-apis
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('kda32k','kda-uni','kda-one','kda-nr','kda-check','kda-checkuni'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
    if k.get('check'): print(n, 'check', json.dumps(k['check'])[:700])
    if k.get('decode'): print(n, 'decode', [(r.get('batch'), round(r.get('us',0),1)) for r in k['decode']])
for n in ('dec-new','dec-start','dec-prof','dec-sweep','dec-max'):
    d=g(n)
    if d.get('check'): print(n, 'check', json.dumps(d['check'])[:600])
    for r in d.get('rows',[]):
        p=r.get('profile')
        print(n, r.get('sweep',''), r.get('model'), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),3), round(r.get('hostMs') or 0,2), r.get('dispatchesPerStep'), p and p.get('gpuMs'))
        if p: print('   ', ' '.join(f"{k['name']}={k['ms']}/{k['dispatches']}" for k in p['kernels'])[:900])
    for x in ('batchLimited','ratios'):
        if d.get(x): print(n, x, json.dumps(d[x]))
m=g('mla-wide')
for x in ('decode','sweep'):
    for r in (m.get(x) or [])[:60]:
        print('mla-wide', x, r.get('context'), r.get('kernel'), json.dumps(r.get('int8Sgm')), r.get('chunks'), r.get('ms'), (r.get('kernelsMs') or {}).get('mla_decode_int8_sgm'))
print('mla-wide checks', json.dumps(m.get('checks'))[:1500])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-1200; cat $OUT/times.txt
