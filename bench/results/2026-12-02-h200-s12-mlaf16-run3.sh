#!/usr/bin/env bash
# Twelfth session, mlaf16's third sitting: the f16 MLA kernel with two blocks of loads in flight (ahead 2, the default now,
# after the second sitting: staging alone ~0.8 of ~1.35 ms at 1M with one block in flight) and 132 chunks; ahead 1, the
# staging forms, 264 chunks, tau 0, stage diagnostics at 1M (all checked at 4K); then the
# fastest form at 4K / 128K / 1M beside the default tensor-core kernel and in the 48B decode step.
E="bash .device-mlaf16/enter.sh"; C=".device-mlaf16/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
M="$E node $C bench mla --json --cache-dtype int8 --unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 4096,1048576 --variants hybrid --cache-dtype int8 --unsafe-apis --f16"
t sweep 100 $M --context 4096,1048576 --int8-kernels f16 --int8-variants f16-all --sweep-chunks ''
# The fastest non-diagnostic f16 form at 1M (default or a variant), as bench decode --mla-int8-f16 items.
BEST=$(python3 - <<'PY'
import json
s=open('/tmp/r/sweep.json').read(); m=json.loads(s[s.index('\n{')+1:] if not s.startswith('{') else s)
c=[(r['ms'],'') for r in m['decode'] if r.get('context')==1048576 and 'ms' in r]
for r in m['sweep']:
    o=r.get('int8F16') or {}
    if 'ms' in r and not o.get('skip') and not r.get('chunks') and o.get('tau') is None:
        c.append((r['ms'],','.join(k if k=='qPerBlock' else f"{k}={str(v).lower() if isinstance(v,bool) else v}" for k,v in o.items())))
print(min(c)[1] if c else '')
PY
)
echo "best: '$BEST'" >> $OUT/times.txt
t rows 60 $M --context 4096,131072,1048576 --int8-kernels f16,subgroup-matrix --int8-variants none --sweep-chunks '' --int8-f16 "$BEST"
t dec-f16 60 $D --mla-int8-kernel f16 --mla-int8-f16 "$BEST"
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try:
        s=open(f'{O}/{n}.json').read(); return json.loads(s if s.startswith('{') else s[s.index('\n{')+1:])
    except Exception as e: return {'loadError': str(e)}
for n in ('sweep','rows'):
    m=g(n)
    if 'loadError' in m: print(n, m)
    for r in m.get('decode',[]): print(n, 'row', r.get('context'), r.get('kernel'), r.get('ms'), r.get('chunks'), json.dumps(r.get('kernelsMs')), r.get('error',''))
    for r in m.get('sweep',[]): print(n, 'sweep', r.get('context'), r.get('chunks'), json.dumps(r.get('int8F16')), r.get('ms'), json.dumps(r.get('kernelsMs')), r.get('error','')[:300])
    for r in m.get('checks',[]): print(n, 'check', r.get('kernel'), json.dumps(r.get('int8F16')), 'vsF16Ref', (r.get('vsF16Reference') or {}).get('relToMax'), 'vsInt8Ref', (r.get('vsInt8Reference') or {}).get('relToMax'), 'vsF32', (r.get('vsF32Attention') or {}).get('relToMax'), r.get('finite'), r.get('error','')[:300])
d=g('dec-f16')
if 'loadError' in d: print('dec', d)
for r in d.get('rows',[]): print('dec', r.get('model'), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),3), r.get('dispatchesPerStep'))
print('dec kernel', d.get('mlaInt8Kernel'), d.get('mlaInt8F16'))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-700; cat $OUT/times.txt
