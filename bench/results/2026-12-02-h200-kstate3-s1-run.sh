#!/usr/bin/env bash
# Ran at commit 0f49d3c (bundle of that tree; the --fwd-state-unrolled option and stateUnrolled.wgsl.ts were removed
# after this sitting, and --fwd-state-fma then applied to the unrolled kernels only). 115 device seconds.
# Engineer kstate3's sitting (eighth session): the KDA forward's state pass variants at B=1, H=16, d=128, T=32768,
# each bench in its own process, most important first, under a time cap; --check at T=2048 for the new paths.
E="bash .device-kstate3/enter.sh"; C=".device-kstate3/app/cli.mjs"; R=$OUT/raw; mkdir -p $R; START=$(date +%s)
CAP=${CAP:-165}
F="bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K="bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check"
t() { if [ $(( $(date +%s) - START )) -gt $CAP ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi
  local s=$(date +%s); local n=$1; shift; timeout 30 $E node $C "$@" > $R/$n.json 2> $R/$n.err; local rc=$?
  echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 300 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t base-r1 $F
t overlap-r1 $F --fwd-state overlap
t rowsfma-r1 $F --fwd-state-unrolled rows --fwd-state-fma on
t flatfma-r1 $F --fwd-state-unrolled flat --fwd-state-fma on
t chk-overlap $K --fwd-state overlap
t base-r2 $F
t overlap-r2 $F --fwd-state overlap
t rows-r1 $F --fwd-state-unrolled rows
t flat-r1 $F --fwd-state-unrolled flat
t chk-rowsfma $K --fwd-state-unrolled rows --fwd-state-fma on
t rowsfma-r2 $F --fwd-state-unrolled rows --fwd-state-fma on
t own-r1 $F --fwd-shared-pipeline off
t chk-flatfma $K --fwd-state-unrolled flat --fwd-state-fma on
python3 - > $OUT/summary.txt <<'PY'
import json, os, glob
for f in sorted(glob.glob(os.environ['OUT'] + '/raw/*.json')):
    n = os.path.basename(f)[:-5]
    try: d = json.load(open(f))
    except Exception as e: print(n, 'no json'); continue
    for r in d.get('chunked', []):
        k = {a: round(b, 3) for a, b in (r.get('kernelsMs') or {}).items() if a != 'copy_dense'}
        print(n, r.get('pass'), r.get('T'), round(r.get('ms', 0), 3), k)
        c = r.get('check')
        if c: print(n, 'check', json.dumps({a: c[a] for a in ('oRelDiff', 'stateRelDiff', 'vsDefault', 'sharedVsSeparate') if a in c}))
PY
cat $OUT/summary.txt; cat $OUT/times.txt
