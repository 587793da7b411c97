#!/usr/bin/env bash
# Twelfth session, engineer hbf16: the mixed mode's per-chunk states hB stored and read as bf16 (--fwd-hb-bf16) on the
# bf16 KDA forward (--unsafe-apis --f16: the tensor-core output pass); T=2048 --check on/off, T=32768 profiles on/off
# alternated twice; the pipelined f32 output pass (--fwd-tc16-output off) on/off; hB bf16 with idle-thread stores.
# Each bench its own process.
E="bash .device-hbf16/enter.sh"; C=".device-hbf16/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 130 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis --f16"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --dtype bf16 --unsafe-apis --f16"
t chk-on 45 $CK --fwd-hb-bf16 on
t p-on1 30 $K --fwd-hb-bf16 on
t p-off1 30 $K --fwd-hb-bf16 off
t p-on2 30 $K --fwd-hb-bf16 on
t p-off2 30 $K --fwd-hb-bf16 off
t chk-off 45 $CK --fwd-hb-bf16 off
t pp-on 30 $K --fwd-hb-bf16 on --fwd-tc16-output off
t pp-off 30 $K --fwd-hb-bf16 off --fwd-tc16-output off
t p-on-is 30 $K --fwd-hb-bf16 on --fwd-state-idle-stores on
python3 - > $OUT/summary.txt <<'PY'
import json, glob, os
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ['chk-on','p-on1','p-off1','p-on2','p-off2','chk-off','pp-on','pp-off','p-on-is']:
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-1000; cat $OUT/times.txt
