#!/usr/bin/env bash
# Lead's final sitting (tenth session), every branch merged (mlalazy3, kda10, gemv10, mla2k, kbind): every target, each
# bench in its own process; the KDA forward in f32 and bf16 (mixed: bf16 inputs, f32 intermediates), each twice, the
# Kt form (--fwd-kt-form on) the same, and each once without bounds clamps (--disable-robustness); the two-pass MLA kernels in the hybrid step at 1M.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 280 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8"
t k-f32 30 $K
t k-bf16 30 $K --dtype bf16
t k-kt 30 $K --fwd-kt-form on
t k-bf16-kt 30 $K --dtype bf16 --fwd-kt-form on
t dec-i8 90 $D --context 4096,131072,1048576 --variants hybrid --cache-dtype int8 --check --unsafe-apis
t k-fb 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
t k-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t k-check16 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16
t k-checkkt 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --fwd-kt-form on
t k-checkkt16 30 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --fwd-kt-form on --dtype bf16
t dec-prof 45 $D --context 4096,1048576 --variants hybrid --cache-dtype int8 --unsafe-apis --profile
t kda 90 $E node $C bench kda --json
t dec-bf16 60 $D --context 4096,131072,1048576 --variants hybrid
t dec-mla 60 $D --context 1048576 --variants all-MLA
t dec-max 90 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 --unsafe-apis
t k-f32b 30 $K
t k-bf16b 30 $K --dtype bf16
t k-ktb 30 $K --fwd-kt-form on
t k-bf16-ktb 30 $K --dtype bf16 --fwd-kt-form on
t k-f32-nr 30 $K --disable-robustness
t k-bf16-nr 30 $K --dtype bf16 --disable-robustness
t k-kt-nr 30 $K --fwd-kt-form on --disable-robustness
t k-bf16-kt-nr 30 $K --dtype bf16 --fwd-kt-form on --disable-robustness
t dec-2p 45 $D --context 1048576 --variants hybrid --cache-dtype int8 --unsafe-apis --profile --mla-int8-kernel two-pass
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('k-f32','k-bf16','k-kt','k-bf16-kt','k-fb','k-check','k-check16','k-checkkt','k-checkkt16','kda','k-f32b','k-bf16b','k-ktb','k-bf16-ktb','k-f32-nr','k-bf16-nr','k-kt-nr','k-bf16-kt-nr'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), 'fresh' if r.get('freshDevice') else '', round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:700])
    if k.get('backwardNewVsOld'): print(n, 'bwd', json.dumps(k['backwardNewVsOld']))
    if k.get('decode'): print(n, 'decode', [(r.get('batch'), round(r.get('us',0),1)) for r in k['decode']])
for n in ('dec-i8','dec-prof','dec-bf16','dec-mla','dec-max','dec-2p'):
    d=g(n)
    if d.get('check'): print(n, 'check', json.dumps(d['check'])[:600])
    for r in d.get('rows',[]):
        p=r.get('profile')
        print(n, r.get('model'), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),3), round(r.get('hostMs') or 0,2), r.get('dispatchesPerStep'), p and p.get('gpuMs'))
        if p: print('   ', ' '.join(f"{k['name']}={k['ms']}/{k['dispatches']}" for k in p['kernels'])[:1000])
    for x in ('batchLimited','ratios'):
        if d.get(x): print(n, x, json.dumps(d[x]))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-1000; cat $OUT/times.txt
