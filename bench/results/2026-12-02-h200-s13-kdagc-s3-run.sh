#!/usr/bin/env bash
# Thirteenth session, kdagc task 2: a sitting PREPARED for the lead (not run by kdagc: no device time in this task).
# bf16 inputs, --unsafe-apis --f16, T=32768, B=1, H=16, d=128, each bench its own process: chunk slots a workgroup
# for the Kt pre-pass (--fwd-kt-slots: kda_chunk_intra_wu) and the tc16 output pass (--fwd-output-slots:
# kda_chunk_output), S = 2 (and 4), both; beta loaded by the gc pass's first workgroup (--fwd-gc-beta-first: kda_chunk_gc);
# --check at T=2048 with them on (slotsVsOne and gcBetaFirstVsAll: 0 expected, bit for bit).
# The lead's bundle: set E / C to its enter.sh and cli.mjs (here .device-kdagc as in sittings 1 and 2).
E="bash .device-kdagc/enter.sh"; C=".device-kdagc/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-200} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis --f16"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --f16"
t chk 45 $CK --fwd-kt-slots 2 --fwd-output-slots 2 --fwd-gc-beta-first on
t base1 30 $K
t kt2-1 30 $K --fwd-kt-slots 2
t out2-1 30 $K --fwd-output-slots 2
t both2-1 30 $K --fwd-kt-slots 2 --fwd-output-slots 2
t gcb1-1 30 $K --fwd-gc-beta-first on
t base2 30 $K
t kt2-2 30 $K --fwd-kt-slots 2
t out2-2 30 $K --fwd-output-slots 2
t both2-2 30 $K --fwd-kt-slots 2 --fwd-output-slots 2
t all-1 30 $K --fwd-kt-slots 2 --fwd-output-slots 2 --fwd-gc-beta-first on
t kt4 30 $K --fwd-kt-slots 4
t out4 30 $K --fwd-output-slots 4
t chk4 45 $CK --fwd-kt-slots 4 --fwd-output-slots 4
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ['chk','base1','kt2-1','out2-1','both2-1','gcb1-1','base2','kt2-2','out2-2','both2-2','all-1','kt4','out4','chk4']:
    for r in g(n).get('chunked',[]):
        km = r.get('kernelsMs') or {}
        print(n, r.get('T'), round(r.get('ms',0),4), {a: round(km[a],4) for a in km if a in ('kda_chunk_intra_wu','kda_chunk_output','kda_chunk_gc')})
        c=r.get('check')
        if c: print(n, 'check', json.dumps({x: c.get(x) for x in ['slotsVsOne','gcBetaFirstVsAll','vsRecurrent','vsF32','startBetaVsCopy'] if x in c}))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-400; cat $OUT/times.txt
