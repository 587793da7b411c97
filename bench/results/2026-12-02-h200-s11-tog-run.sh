#!/usr/bin/env bash
# Eleventh session, lead's first sitting: Dawn's safe robustness toggles (--dawn-toggles) on the KDA forward at
# T=32768 (bf16 inputs and f32) and the 48B decode step (int8 cache, tensor cores); each bench in its own process.
# RBA2 = vulkan_use_buffer_robust_access_2, RIA = enable_integer_range_analysis_in_robustness,
# ZIE = use_vulkan_zero_initialize_workgroup_memory_extension, CMR = vulkan_use_cooperative_matrix_robust_access;
# the unsafe disable_workgroup_init and disable_robustness for comparison; whether vulkan_enable_f16_on_nvidia offers shader-f16.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 480 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -i "forcing\|toggle" $R/$n.err | sort -u | head -5 | sed "s/^/  $n: /" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 4096,1048576 --variants hybrid --cache-dtype int8 --unsafe-apis"
RBA2=vulkan_use_buffer_robust_access_2; RIA=enable_integer_range_analysis_in_robustness
ZIE=use_vulkan_zero_initialize_workgroup_memory_extension; CMR=vulkan_use_cooperative_matrix_robust_access
SAFE=$RBA2,$RIA,$ZIE
t info 30 $E node $C info --json --unsafe-apis --dawn-toggles vulkan_enable_f16_on_nvidia,$SAFE,$CMR
t k16-base 30 $K --dtype bf16
t k16-safe 30 $K --dtype bf16 --dawn-toggles $SAFE
t k16-rba2 30 $K --dtype bf16 --dawn-toggles $RBA2
t k16-ria 30 $K --dtype bf16 --dawn-toggles $RIA
t k16-zie 30 $K --dtype bf16 --dawn-toggles $ZIE
t k16-dwi 30 $K --dtype bf16 --dawn-toggles disable_workgroup_init
t k16-nr 30 $K --dtype bf16 --disable-robustness
t k32-base 30 $K
t k32-safe 30 $K --dawn-toggles $SAFE
t dec-base 75 $D
t dec-safe 75 $D --dawn-toggles $SAFE,$CMR
t k-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check --dawn-toggles $SAFE
t k16-safe2 30 $K --dtype bf16 --dawn-toggles $SAFE
t k16-base2 30 $K --dtype bf16
python3 - > $OUT/summary.txt <<'PY'
import json, glob, os
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
i=g('info'); print('info features', i.get('allFeatures'), 'toggles', i.get('toggles'))
for n in sorted(os.path.basename(p)[:-5] for p in glob.glob(O+'/k*.json')):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:700])
    if k.get('backwardNewVsOld'): print(n, 'bwd', json.dumps(k['backwardNewVsOld']))
for n in ('dec-base','dec-safe'):
    d=g(n)
    if d.get('check'): print(n, 'check', json.dumps(d['check'])[:300])
    for r in d.get('rows',[]):
        print(n, r.get('model'), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),3), round(r.get('hostMs') or 0,2), r.get('dispatchesPerStep'))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-900; cat $OUT/times.txt
