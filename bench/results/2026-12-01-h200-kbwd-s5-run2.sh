#!/usr/bin/env bash
# kbwd fifth session, sitting 2 (copied to .device-kbwd/run2.sh): the final defaults (tiled seq pass unsplit, utRows, pairs dg scan) vs the previous defaults, own processes, and inside the full bench kda.
E="bash .device-kbwd/enter.sh"; C=".device-kbwd/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" | tee -a $OUT/times.txt; tail -c 1500 $R/$n.err | grep -v Warning | sed "s/^/$n: /" >> $OUT/errs.txt; }
B="$E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile"
t final 40 $B
t prev 40 $B --bwd-tune prevDstateSeq=1,prevUtRows=1,pairsTailDg=1
t full 60 $E node $C bench kda --json --profile
python3 - <<'PY'
import json, os, glob
O=os.environ['OUT']
for f in sorted(glob.glob(O+'/*.json')):
    n=os.path.basename(f)[:-5]
    try: d=json.load(open(f))
    except Exception as e: print(n, 'ERR', e); continue
    for r in d.get('chunked',[]):
        if r.get('T')==32768: print(n, r['pass'], round(r['ms'],3), {k[4:]:round(v,3) for k,v in r.get('kernelsMs',{}).items() if k.startswith('kda_')})
    for r in d.get('decode',[]): print(n, 'decode', r.get('batch'), round(r.get('us',0),1))
print(open(O+'/times.txt').read()); print(open(O+'/errs.txt').read()[-1500:])
PY
