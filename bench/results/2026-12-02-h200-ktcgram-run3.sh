#!/usr/bin/env bash
# ktcgram sitting 3: KN staged transposed (--fwd-tc16-gram-knt on: a row-major right operand) with and without the split
# layout, against split and off. Run from the main checkout's ignored .device-ktcgram (the device tool sends the main
# checkout). Only this sitting's files are packed (sitting 2's raw.tgz also held other sessions' files from /tmp/r).
D=.device-ktcgram; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/ktcgram3; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 60 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis"
t chk-splitk 40 $CK --fwd-tc16-gram on --fwd-tc16-gram-split on --fwd-tc16-gram-knt on
t splitk 30 $K --fwd-tc16-gram on --fwd-tc16-gram-split on --fwd-tc16-gram-knt on
t split 30 $K --fwd-tc16-gram on --fwd-tc16-gram-split on
t off 30 $K --fwd-tc16-gram off
t onk 30 $K --fwd-tc16-gram on --fwd-tc16-gram-knt on
t splitk2 30 $K --fwd-tc16-gram on --fwd-tc16-gram-split on --fwd-tc16-gram-knt on
t split2 30 $K --fwd-tc16-gram on --fwd-tc16-gram-split on
t off2 30 $K --fwd-tc16-gram off
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('chk-splitk','splitk','split','off','onk','splitk2','split2','off2'):
    try: k=json.load(open(f'/tmp/ktcgram3/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]):
        print(n, r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items() if a.startswith('kda')})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
PY
