#!/usr/bin/env bash
# Twelfth session, mlaf16's first sitting: the int8 cache's MLA decode on f16 tensor cores (int8Kernel 'f16',
# int8F16Plan.ts) per layer at 4K / 128K / 1M beside the default tensor-core kernel, checked at 4K against the int8
# reference and its own scheme; its stages left out at 1M (diagnostics); the 48B decode step with it at 4K and 1M.
E="bash .device-mlaf16/enter.sh"; C=".device-mlaf16/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 300 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
M="$E node $C bench mla --json --cache-dtype int8 --unsafe-apis --f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 4096,1048576 --variants hybrid --cache-dtype int8 --unsafe-apis --f16"
t mla 150 $M --context 4096,131072,1048576 --int8-kernels f16,subgroup-matrix --int8-variants f16-stages --sweep-chunks 132,264,528
t dec-f16 90 $D --mla-int8-kernel f16
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {'loadError': str(e)}
m=g('mla')
for r in m.get('decode',[]): print('row', r.get('context'), r.get('kernel'), r.get('ms'), r.get('chunks'), json.dumps(r.get('kernelsMs')), r.get('error',''))
for r in m.get('sweep',[]): print('sweep', r.get('context'), r.get('kernel'), r.get('chunks'), json.dumps(r.get('int8F16')), r.get('ms'), json.dumps(r.get('kernelsMs')), r.get('error',''))
for r in m.get('checks',[]): print('check', json.dumps(r)[:900])
d=g('dec-f16')
if 'loadError' in d: print('dec', d)
for r in d.get('rows',[]): print('dec', r.get('model'), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),3), r.get('dispatchesPerStep'))
print('dec kernel', d.get('mlaInt8Kernel'), d.get('mlaInt8F16'))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-1000; cat $OUT/times.txt
