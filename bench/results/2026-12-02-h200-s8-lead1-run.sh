#!/usr/bin/env bash
# Lead's sitting 1 (eighth session), main 58e8e41 (kstate3, kgram, kout merged): the merged KDA defaults, checks.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 100 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
t k-def 30 $K
t k-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --bwd-check
t k-fb 60 $E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile
t k-norob 30 $K --disable-robustness
t k-def2 30 $K
python3 - > $OUT/summary.txt <<'PY'
import json
def g(n):
    try: return json.load(open(f'/tmp/r/{n}.json'))
    except Exception as e: return {}
for n in ('k-def','k-check','k-fb','k-norob','k-def2'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:600])
    for x in ('check','bwdCheck'):
        if k.get(x): print(n, x, json.dumps(k[x])[:600])
    if k.get('decode'): print(n, 'decode', [(r.get('batch'), round(r.get('us',0),1)) for r in k['decode']])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-700; cat $OUT/times.txt
