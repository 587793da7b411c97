#!/usr/bin/env bash
# ktckt sitting 1 (eleventh session): the Kt form's pre-pass on f16 tensor cores (--fwd-tc16-kt on) against the
# f32 kernel (off), bf16 inputs, B=1, H=16, d=128, T=32768, each bench its own process, both with --unsafe-apis;
# and the two-slot walk (--fwd-tc16-kt-chunks 2); then the T=2048 --check (vsF32, vsRecurrent, tc16KtVsOff); then a second on/off pair while time allows.
E="bash .device/enter.sh"; C=".device/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s); LIMIT=${LIMIT:-110}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; cp $R/$n.json $OUT/ 2>/dev/null; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
t on 40 $K --fwd-tc16-kt on
t off 40 $K --fwd-tc16-kt off
t onw 40 $K --fwd-tc16-kt on --fwd-tc16-kt-chunks 2
t check 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --fwd-tc16-kt on
t checkw 45 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --fwd-tc16-kt on --fwd-tc16-kt-chunks 2
t check65 30 $E node $C bench kda --json --T 65 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis --fwd-tc16-kt on
t on2 40 $K --fwd-tc16-kt on
t off2 40 $K --fwd-tc16-kt off
t onw2 40 $K --fwd-tc16-kt on --fwd-tc16-kt-chunks 2
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('on','off','onw','check','checkw','check65','on2','off2','onw2'):
    try: k=json.load(open(f'/tmp/r/{n}.json'))
    except Exception as e: print(n, 'no json'); continue
    for r in k.get('chunked',[]):
        print(n, r.get('T'), round(r.get('ms',0),4), {a: round(b,4) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check']))
PY
cat $OUT/summary.txt; cat $OUT/times.txt
