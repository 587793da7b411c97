#!/usr/bin/env bash
# Thirteenth session, attn's second sitting (branch s13-attn 3e7e534): (1) bench mla's rows after a long host-side
# step (the 4K reference checks of the f16 set), now with the timing's warm-up after idle gaps: the 128K and 1M rows
# should read as in a fresh process; the f16 kernel's new default (the merge's loads four chunks at a time);
# (2) bench decode in the lead's order with --check and --profile and 32 steps, and 1M first; clocks every 100 ms.
bash .device-attn/enter.sh true >/dev/null 2>&1
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
export PATH=/tmp/nodebin:$PATH
C=".device-attn/app/cli.mjs"; R=/tmp/r-attn2; rm -rf $R; mkdir -p $R; START=$(date +%s)
(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 100 > $R/smi.csv 2>&1) & SMI=$!
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-90} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; echo "$n start $(date +%T.%N)" >> $R/marks.txt; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "$n end $(date +%T.%N)" >> $R/marks.txt; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
D="node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 $U"
M="node $C bench mla --json --cache-dtype int8 $U"
t mla 60 $M --context 4096,131072,1048576 --int8-kernels f16,subgroup-matrix,f16 --int8-variants f16 --sweep-chunks ''
t dec 60 $D --steps 32 --context 4096,131072,1048576 --check --profile
t dec-1m 30 $D --steps 32 --context 1048576
kill $SMI 2>/dev/null
cp $R/smi.csv $R/marks.txt $OUT/ 2>/dev/null
tar -C $R -czf $OUT/raw.tgz .
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r-attn2'
def g(n):
    try:
        s=open(f'{O}/{n}.json').read(); return json.loads(s[s.index('{'):])
    except Exception as e: return {'loadError': str(e)}
for n in ('dec','dec-1m'):
    d=g(n)
    if 'loadError' in d: print(n, d); continue
    for r in d.get('rows',[]):
        pr=r.get('profile') or {}
        ks={k['name']:k['ms'] for k in pr.get('kernels',[])}
        print(n, r.get('context'), round(r.get('tpotMs',0),3), 'steps', r.get('stepMs'), 'gpu', pr.get('gpuMs'), 'mla', ks.get('mla_decode_int8_f16'), 'q', ks.get('mla_int8_f16_query'), 'merge', ks.get('mla_merge'), 'disp', r.get('dispatchesPerStep'))
    c=d.get('check',{}).get('hybrid')
    if c: print(n, 'check', c.get('tokensEqual'), c.get('logitsMaxRelDiff'), c.get('replayLogitsMaxRelDiff'))
m=g('mla')
for r in m.get('decode',[]): print('mla row',r.get('context'),r.get('kernel'),r.get('ms'),r.get('trialsMs'),json.dumps(r.get('kernelsMs')),r.get('error',''))
for r in m.get('sweep',[]): print('mla sweep',r.get('chunks'),json.dumps(r.get('int8F16')),r.get('ms'),r.get('trialsMs'),json.dumps(r.get('kernelsMs')),r.get('error','')[:300])
for r in m.get('checks',[]): print('mla check',r.get('kernel'),r.get('chunks'),json.dumps(r.get('int8F16')),'vsF16Ref',(r.get('vsF16Reference') or {}).get('relToMax'),'vsInt8Ref',(r.get('vsInt8Reference') or {}).get('relToMax'),r.get('finite'))
for r in m.get('crossChecks') or []: print('mla cross',json.dumps(r))
PY
cat $OUT/summary.txt | cut -c1-700; cat $OUT/times.txt
