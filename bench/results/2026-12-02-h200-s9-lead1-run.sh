#!/usr/bin/env bash
# Lead's sitting 1 (ninth session), main d062c19 (bfin + bfstate merged: the bf16 storage mode): the T=32768 forward in
# f32 and in bf16, each in its own process, alternating, with the per-kernel profile; the bf16 mode's --check at T=2048.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
t f32-a 30 $K
t bf16-a 30 $K --dtype bf16
t f32-b 30 $K
t bf16-b 30 $K --dtype bf16
t bf16-check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16
t bf16-c 30 $K --dtype bf16
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('f32-a','bf16-a','f32-b','bf16-b','bf16-check','bf16-c'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype'), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:600])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-900; cat $OUT/times.txt
