#!/usr/bin/env bash
# Thirteenth session, kdagc, sitting 2 (bf16 inputs, --unsafe-apis --f16, T=32768, B=1, H=16, d=128; each bench its
# own process): the new default (state pass takes the start, bf16 beta read as bf16 by the state pass, widened by the
# gc pass for intraGram: new) against intraGram reading bf16 beta (gcb-off: sitting 1's new) and both options off
# (old: copy_dense + cast_f32); then candidates on top of the new default: the state pass in its own pipeline
# (shared-off), the tensor-core output pass's split loads (split), the state pass with 512 threads (s512; RA 1:
# s512r1); --check at T=2048 (bf16; f32 with --bwd-check).
E="bash .device-kdagc/enter.sh"; C=".device-kdagc/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-115} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
U="--unsafe-apis --f16"
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 $U"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 $U"
OLD="--fwd-state-start off --fwd-beta-bf16 off"
t new1 30 $K
t old1 30 $K $OLD
t gcb-off1 30 $K --fwd-gc-beta off
t shared-off1 30 $K --fwd-shared-pipeline off
t split1 30 $K --fwd-tc16-output-split on
t s512 30 $K --fwd-state-wg 512
t s512r1 30 $K --fwd-state-wg 512 --fwd-state-rows 1
t chk 45 $CK
t new2 30 $K
t old2 30 $K $OLD
t gcb-off2 30 $K --fwd-gc-beta off
t shared-off2 30 $K --fwd-shared-pipeline off
t split2 30 $K --fwd-tc16-output-split on
t chk32 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t new3 30 $K
t old3 30 $K $OLD
t shared-off3 30 $K --fwd-shared-pipeline off
t split3 30 $K --fwd-tc16-output-split on
t both 30 $K --fwd-shared-pipeline off --fwd-tc16-output-split on
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ['new1','old1','gcb-off1','shared-off1','split1','s512','s512r1','chk','new2','old2','gcb-off2','shared-off2','split2','chk32','new3','old3','shared-off3','split3','both']:
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),4), {a: round(b,4) for a,b in (r.get('kernelsMs') or {}).items()})
        c=r.get('check')
        if c: print(n, 'check', json.dumps({x: c.get(x) for x in ['startBetaVsCopy','startVsCopy','gramGcVsPass','vsF32','vsRecurrent','oRelDiff','stateRelDiff','sharedVsSeparate','vsDefault','ktFormVsWU','vsOld'] if x in c}))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-700; cat $OUT/times.txt
