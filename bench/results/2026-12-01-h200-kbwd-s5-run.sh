#!/usr/bin/env bash
# kbwd, fifth session: the backward kernels of this round against the previous defaults, one sitting (H200).
# Run from the repository root with the bundle at .device-kbwd (scripts/device-prepare.sh). Ran at
# commit 5c4b3d3, whose switches prevDstatePre and seqWhole were
# removed after this sitting (the vec4 pre pass dropped, the unsplit G phase made the only form).
E="bash .device-kbwd/enter.sh"; C=".device-kbwd/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" | tee -a $OUT/times.txt; tail -c 1500 $R/$n.err | grep -v Warning | sed "s/^/$n: /" >> $OUT/errs.txt; }
B="$E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile"
PREV=prevDstateSeq=1,prevUtRows=1,prevDstatePre=1,pairsTailDg=1
t prev1 40 $B --bwd-tune $PREV
t new1 40 $B
t prev2 40 $B --bwd-tune $PREV
t new2 40 $B
t seq-whole 40 $B --bwd-tune seqWhole=1
t ut-square 40 $B --bwd-tune utSquare=1
t ut-prev 40 $B --bwd-tune prevUtRows=1
t seq-ra1 40 $B --bwd-tune seqRows=1
t seq-ra4 40 $B --bwd-tune seqRows=4
t pairs-tail 40 $B --bwd-tune pairsTailDg=1
t pre-prev 40 $B --bwd-tune prevDstatePre=1
t check 60 $E node $C bench kda --json --T 2048 --batch 1 --skip-backward --bwd-check
t full 90 $E node $C bench kda --json --profile
python3 - <<'PY'
import json, os, glob
O=os.environ['OUT']
for f in sorted(glob.glob(O+'/*.json')):
    n=os.path.basename(f)[:-5]
    try: d=json.load(open(f))
    except Exception as e: print(n, 'ERR', e); continue
    for r in d.get('chunked',[]):
        if r.get('T')==32768: print(n, r['pass'], round(r['ms'],3), {k[4:]:round(v,3) for k,v in r.get('kernelsMs',{}).items() if k.startswith('kda_bwd')})
    for k in ('backwardNewVsOld','seqTiledVsPrev','seqSplitVsWhole','preVecVsPrev','pairsScanVsTail','utRowsVsPrev','utTriangularVsSquare','pairsVecVsFactored','utFixedVsVarRows'):
        if k in d: print(n, k, {a:float('%.2g'%b) for a,b in d[k].items()})
print(open(O+'/times.txt').read()); print(open(O+'/errs.txt').read()[-1500:])
PY
