#!/usr/bin/env bash
# ktcgram sitting 1 (eleventh session): the tensor-core intraGram (--fwd-tc16-gram on) against off, bf16 inputs,
# its compact variant (--fwd-tc16-gram-compact on) and the diagonal blocks on subgroup 2 (--fwd-tc16-gram-diag-mma on), each bench in its own process: info, --check at T=2048, the
# forward at T=32768 (compact, plain, off; twice, interleaved).
E="bash .device/enter.sh"; C=".device/app/cli.mjs"; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 140 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $OUT/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis"
t info 20 $E node $C info --unsafe-apis
t chk-onc 40 $CK --fwd-tc16-gram on --fwd-tc16-gram-compact on
t chk-on 40 $CK --fwd-tc16-gram on
t chk-oncd 40 $CK --fwd-tc16-gram on --fwd-tc16-gram-compact on --fwd-tc16-gram-diag-mma on
t onc 30 $K --fwd-tc16-gram on --fwd-tc16-gram-compact on
t on 30 $K --fwd-tc16-gram on
t off 30 $K --fwd-tc16-gram off
t oncd 30 $K --fwd-tc16-gram on --fwd-tc16-gram-compact on --fwd-tc16-gram-diag-mma on
t ond 30 $K --fwd-tc16-gram on --fwd-tc16-gram-diag-mma on
t chk-off 40 $CK --fwd-tc16-gram off
t onc2 30 $K --fwd-tc16-gram on --fwd-tc16-gram-compact on
t on2 30 $K --fwd-tc16-gram on
t off2 30 $K --fwd-tc16-gram off
t oncd2 30 $K --fwd-tc16-gram on --fwd-tc16-gram-compact on --fwd-tc16-gram-diag-mma on
t ond2 30 $K --fwd-tc16-gram on --fwd-tc16-gram-diag-mma on
python3 - > $OUT/summary.txt <<'PY'
import json, os
O=os.environ['OUT']
for n in ('chk-onc','chk-on','chk-oncd','chk-off','onc','on','off','oncd','ond','onc2','on2','off2','oncd2','ond2'):
    try: k=json.load(open(f'{O}/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
