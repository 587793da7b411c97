#!/usr/bin/env bash
# Run as .device-ktcout/run*.sh from the main checkout's copy (the device runs /work/main's tree; the bundle
# travelled as the ignored folder .device-ktcout, so the paths below read .device-ktcout where the first draft had .device).
# ktcout sitting 4: the tensor-core output pass with its products unrolled and interleaved (one right-operand load a
# step, the fragments' products independent), against off; variants and the no-products probe in one process; the
# --check at T=2048; padded workgroup-memory rows (--fwd-tc16-output-pad on, Qg S in halves of 64 channels).
E="bash .device-ktcout/enter.sh"; C=".device-ktcout/app/cli.mjs"; R=/tmp/ktcout4; rm -rf $R; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-60} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
CK="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --check --skip-backward --dtype bf16 --unsafe-apis"
t chk-pad 30 $CK --fwd-tc16-output on --fwd-tc16-output-pad on
t sweep 60 $K --fwd-sweep tc16-out,tc16-out-pad,tc16-out-pad-wg512,tc16-out-pad-split,tc16-out-pad-no-products --fwd-sweep-rounds 2
t on 30 $K --fwd-tc16-output on --fwd-tc16-output-pad on
t off 30 $K --fwd-tc16-output off
t chk-on 30 $CK --fwd-tc16-output on
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/ktcout4'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('chk-on','chk-pad','sweep','on','off','chk-padw'):
    for r in g(n).get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:900])
        for name, row in (r.get('sweep') or {}).items():
            print(n, 'sweep', name, row.get('ms'), [round(x.get('kda_chunk_output', 0), 3) for x in row.get('kernelsMs', [])], row.get('error', ''))
PY
cat $OUT/summary.txt | cut -c1-1200; cat $OUT/times.txt
