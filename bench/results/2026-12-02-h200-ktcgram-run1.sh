#!/usr/bin/env bash
# ktcgram sitting 1 (eleventh session): the tensor-core intraGram (--fwd-tc16-gram on) against off, bf16 inputs,
# each bench in its own process: info, --check at T=2048 on / off, the forward at T=32768 on / off twice (interleaved).
E="bash .device/enter.sh"; C=".device/app/cli.mjs"; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 150 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $OUT/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis"
t info 20 $E node $C info --unsafe-apis
t chk-on 45 $CK --fwd-tc16-gram on
t on 30 $K --fwd-tc16-gram on
t off 30 $K --fwd-tc16-gram off
t chk-off 45 $CK --fwd-tc16-gram off
t on2 30 $K --fwd-tc16-gram on
t off2 30 $K --fwd-tc16-gram off
python3 - > $OUT/summary.txt <<'PY'
import json, os
O=os.environ['OUT']
for n in ('chk-on','chk-off','on','off','on2','off2'):
    try: k=json.load(open(f'{O}/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
