#!/usr/bin/env bash
# dec8 sitting 1: bench sgm (raw int8 rates), bench mla int8 variants at 1M (+ exactness at 4096), the same
# without robustness (diagnostic), bench decode TPOT at 1M for the default and two kernel variants.
E="bash .device-dec8/enter.sh"; C=".device-dec8/app/cli.mjs"
t() { local s=$(date +%s); local n=$1; local lim=$2; shift 2; timeout $lim "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $OUT/$n.err | tail -c 1200 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t sgm 50 $E node $C bench sgm --json --unsafe-apis
t mla 70 $E node $C bench mla --json --cache-dtype int8 --context 1048576,4096 --int8-kernels dp4a --sweep-chunks ''
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 1048576 --variants hybrid --cache-dtype int8"
t dec 40 $D
t dec-nx 40 $D --mla-int8-variant '{"nested":true}'
t dec-nxuo 40 $D --mla-int8-variant '{"nested":true,"unrollO":true}'
t mla-norob 45 $E node $C bench mla --json --cache-dtype int8 --context 1048576 --int8-kernels dp4a --sweep-chunks '' --disable-robustness
cat $OUT/times.txt
python3 - <<'PY'
import json, os
O=os.environ['OUT']
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
s=g('sgm'); print('sgm', s.get('subgroupMatrix'))
for r in s.get('rows',[]): print(' ', {k:r.get(k) for k in ('kernel','source','m','n','subgroups','ms','tops','exact','error')})
for n in ('mla','mla-norob'):
    d=g(n)
    for r in d.get('decode',[]): print(n, r.get('context'), r.get('ms'), r.get('kernelsMs'))
    for r in d.get('sweep',[]): print(n, 'sweep', r.get('chunks'), r.get('int8Variant'), r.get('ms'))
    for r in d.get('checks',[]): print(n, 'check', r.get('chunks'), r.get('int8Variant'), r['vsDp4aKernel']['relToMax'] if r.get('vsDp4aKernel') else None)
for n in ('dec','dec-nx','dec-nxuo'):
    d=g(n); print(n, [(r.get('context'), r.get('tpotMs'), r.get('hostMs')) for r in d.get('rows',[])])
PY
