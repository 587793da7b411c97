#!/usr/bin/env bash
# ktcgram sitting 2: the split variant (--fwd-tc16-gram-split on: the f32 units on all threads, four a unit) against
# off and the sitting-1 variants, and the plain tc16 kernel with one part left out (--fwd-tc16-gram-skip; wrong
# results, times only). Run from the main checkout's ignored .device-ktcgram (the device tool sends the main checkout).
D=.device-ktcgram; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 90 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis"
t chk-split 40 $CK --fwd-tc16-gram on --fwd-tc16-gram-split on
t split 30 $K --fwd-tc16-gram on --fwd-tc16-gram-split on
t off 30 $K --fwd-tc16-gram off
t on 30 $K --fwd-tc16-gram on
t ond 30 $K --fwd-tc16-gram on --fwd-tc16-gram-diag-mma on
t skip-scale 30 $K --fwd-tc16-gram on --fwd-tc16-gram-skip scale
t skip-f16 30 $K --fwd-tc16-gram on --fwd-tc16-gram-skip f16
t skip-mma 30 $K --fwd-tc16-gram on --fwd-tc16-gram-skip mma
t skip-f32 30 $K --fwd-tc16-gram on --fwd-tc16-gram-skip f32
t split2 30 $K --fwd-tc16-gram on --fwd-tc16-gram-split on
t off2 30 $K --fwd-tc16-gram off
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('chk-split','split','off','on','ond','skip-scale','skip-f16','skip-mma','skip-f32','split2','off2'):
    try: k=json.load(open(f'/tmp/r/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]):
        print(n, r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items() if a.startswith('kda')})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
