#!/usr/bin/env bash
# Twelfth session, gcfuse: gc formed in the two-pass intra's first kernel's prologue (--fwd-gram-gc-prologue on)
# against the gc pass (off) on the KDA forward, B=1, H=16, d=128: --check at T=2048 (bf16 with --unsafe-apis --f16,
# and f32), then the T=32768 profile, bf16 (--unsafe-apis --f16) and f32, on/off alternated twice; each bench its own
# process.
E="bash .device-gcfuse/enter.sh"; C=".device-gcfuse/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward"
B16="--dtype bf16 --unsafe-apis --f16"
P="--fwd-gram-gc-prologue"
t check16 45 $CK $B16 $P on
t check32 45 $CK $P on
t b-on 30 $K $B16 $P on
t b-off 30 $K $B16 $P off
t f-on 30 $K $P on
t f-off 30 $K $P off
t b-on2 30 $K $B16 $P on
t b-off2 30 $K $B16 $P off
t f-on2 30 $K $P on
t f-off2 30 $K $P off
python3 - > $OUT/summary.txt <<'PY'
import json, glob, os
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ['check16','check32','b-on','b-off','b-on2','b-off2','f-on','f-off','f-on2','f-off2']:
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:1500])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-1600; cat $OUT/times.txt
