#!/usr/bin/env bash
# Lead's final sitting (seventh session), main with every branch merged (kintra2 included; MoE down at 128 lanes):
# kintra2's intra variants first (they decide a default), then every target, each bench in its own process.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 210 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
X="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check"
t k-def 30 $K
t k-w4u 30 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform
t k-w2u 30 $K --fwd-intra-wu-walk 2 --fwd-intra-wu-loads uniform
t k-w4 30 $K --fwd-intra-wu-walk 4
t k-w4uc2 30 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform --fwd-intra-wu-chunks 2
t k-w4db 30 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-double-b on
t k-gss 30 $K --fwd-intra-gram-staged-stores on
t k-gssw4u 30 $K --fwd-intra-gram-staged-stores on --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform
t c-all 45 $X --fwd-intra-gram-staged-stores on --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform --fwd-intra-wu-chunks 2
t c-db 45 $X --fwd-intra-wu-walk 4 --fwd-intra-wu-double-b on
t kda32k 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"
t dec-i8 90 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 --check --unsafe-apis
t dec-max 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 --unsafe-apis
t dec-prof 45 $D --context 1048576 --variants hybrid --cache-dtype int8 --unsafe-apis --profile
t kda 60 $E node $C bench kda --json
t kda-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t dec-bf16 60 $D --context 4096,131072,1048576 --variants hybrid
t dec-mla 60 $D --context 1048576 --variants all-MLA
t k-def2 30 $K
t k-w4u2 30 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('k-def','k-w4u','k-w2u','k-w4','k-w4uc2','k-w4db','k-gss','k-gssw4u','c-all','c-db','kda32k','kda','kda-check','k-def2','k-w4u2'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
    if k.get('check'): print(n, 'check', json.dumps(k['check'])[:600])
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
cat $OUT/summary.txt | cut -c1-900; cat $OUT/times.txt
