#!/usr/bin/env bash
# Run as .device-ktcout/run*.sh from the main checkout's copy (the device runs /work/main's tree; the bundle
# travelled as the ignored folder .device-ktcout, so the paths below read .device-ktcout where the first draft had .device).
# ktcout sitting (eleventh session): the f16 tensor-core output pass (--fwd-tc16-output on, and its split variant)
# against the pipelined one (off), bf16 inputs (mixed mode), T=32768 profiled, each bench in its own process; the
# --check at T=2048 (vsF32, vsRecurrent, vsTc16OutputOff); the variants (split, 512 threads) in one process (--fwd-sweep).
E="bash .device-ktcout/enter.sh"; C=".device-ktcout/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-170} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis"
t chk-on 40 $CK --fwd-tc16-output on
t on 30 $K --fwd-tc16-output on
t off 30 $K --fwd-tc16-output off
t sweep 90 $K --fwd-sweep tc16-out,tc16-out-split,tc16-out-wg512,tc16-out-wg512-split --fwd-sweep-rounds 3
t chk-w512s 30 $CK --fwd-tc16-output on --fwd-tc16-output-wg 512 --fwd-tc16-output-split on
t on2 30 $K --fwd-tc16-output on
t off2 30 $K --fwd-tc16-output off
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('chk-on','on','off','sweep','chk-w512s','on2','off2'):
    k=g(n)
    for r in k.get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
        for name, row in (r.get('sweep') or {}).items():
            print(n, 'sweep', name, row.get('ms'), [round(x.get('kda_chunk_output', 0), 3) for x in row.get('kernelsMs', [])], row.get('error', ''))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt | cut -c1-1200; cat $OUT/times.txt
