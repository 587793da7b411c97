#!/usr/bin/env bash
# Thirteenth session, kdagc, sitting 1 (bf16 inputs, --unsafe-apis --f16, T=32768, B=1, H=16, d=128; each bench its
# own process): the state pass taking the start itself and bf16 beta read as bf16 (the new default: new) against both
# off (old: copy_dense + cast_f32 as before); the gc prologue with the spread walk (spr) and with the one-warp walk
# (gcp); --check at T=2048 (startBetaVsCopy, gramGcVsPass with and without the spread walk), the f32 --check
# --bwd-check; f32 new / old; the spread walk with tile 0 from workgroup memory; disable_workgroup_init (unsafe, data
# point only).
E="bash .device-kdagc/enter.sh"; C=".device-kdagc/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-125} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
U="--unsafe-apis --f16"
K32="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K="$K32 --dtype bf16 $U"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U"
OLD="--fwd-state-start off --fwd-beta-bf16 off"
SPR="--fwd-gram-gc-prologue on --fwd-gram-gc-spread on"
t new1 30 $K
t old1 30 $K $OLD
t spr1 30 $K $SPR
t gcp1 30 $K --fwd-gram-gc-prologue on
t chk 45 $CK
t new2 30 $K
t old2 30 $K $OLD
t spr2 30 $K $SPR
t chk-spr 45 $CK --fwd-gram-gc-spread on
t chk32 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t new3 30 $K
t spr3 30 $K $SPR
t old3 30 $K $OLD
t f-new 30 $K32
t f-old 30 $K32 --fwd-state-start off
t spr-t0 30 $K $SPR --fwd-gram-gc-tile0 on
t spr-wi 30 $K $SPR --dawn-toggles disable_workgroup_init
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ['new1','old1','spr1','gcp1','chk','new2','old2','spr2','chk-spr','chk32','new3','spr3','old3','f-new','f-old','spr-t0','spr-wi']:
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),4), {a: round(b,4) for a,b in (r.get('kernelsMs') or {}).items()})
        c=r.get('check')
        if c: print(n, 'check', json.dumps({x: c.get(x) for x in ['startBetaVsCopy','startVsCopy','gramGcVsPass','vsF32','oRelDiff','stateRelDiff','sharedVsSeparate','vsDefault','ktFormVsWU'] if x in c}))
    for r in k.get('backward',[]) or []:
        if isinstance(r, dict) and r.get('check'): print(n, 'bwd', json.dumps(r.get('check'))[:300])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-700; cat $OUT/times.txt
