#!/usr/bin/env bash
# Ran on the working tree just before commit bda3c30 (its stateTiled / chunk.ts fma code; the unrolled kernels, removed in bda3c30, still present). 127 device seconds.
# Engineer kstate3's second sitting (eighth session): the tiled state pass's V' as fma chains (the new default on
# GPUs) against the plain sum (--fwd-state-fma off), interleaved, each bench in its own process; checks at T=2048.
E="bash .device-kstate3/enter.sh"; C=".device-kstate3/app/cli.mjs"; R=$OUT/raw; mkdir -p $R; START=$(date +%s)
CAP=${CAP:-80}
F="bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K="bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check"
t() { if [ $(( $(date +%s) - START )) -gt $CAP ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi
  local s=$(date +%s); local n=$1; shift; timeout 40 $E node $C "$@" > $R/$n.json 2> $R/$n.err; local rc=$?
  echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 300 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t fma-r1 $F
t base-r1 $F --fwd-state-fma off
t fma-r2 $F
t base-r2 $F --fwd-state-fma off
t chk-new $K --bwd-check
t chk-old $K --fwd-state-fma off
t fma-r3 $F
t base-r3 $F --fwd-state-fma off
t fma-kdoff $F --fwd-kd-in-state off
t fb-fma bench kda --json --T 32768 --batch 1 --skip-recompute --profile
t fb-base bench kda --json --T 32768 --batch 1 --skip-recompute --profile --fwd-state-fma off
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
        if c: print(n, 'check', json.dumps({a: c[a] for a in ('oRelDiff', 'stateRelDiff', 'vsDefault', 'vsSessionStart') if a in c}))
    if d.get('backwardNewVsOld'): print(n, 'bwd', json.dumps(d['backwardNewVsOld']))
PY
tar -C $OUT -czf $OUT/raw.tgz raw && rm -rf $R
cat $OUT/summary.txt; cat $OUT/times.txt
