#!/usr/bin/env bash
# Run as .device-ktcout/run*.sh from the main checkout's copy (the device runs /work/main's tree; the bundle
# travelled as the ignored folder .device-ktcout, so the paths below read .device-ktcout where the first draft had .device).
# ktcout sitting 2: what the tensor-core output pass's time is made of (profiling probes, wrong results: no
# products, no global loads, no f16 staging stores) in one process (s2: on against off without bounds clamps, --disable-robustness: that line ran once, then gave way to the fixed probes, s3).
E="bash .device-ktcout/enter.sh"; C=".device-ktcout/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-120} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --dtype bf16 --unsafe-apis"
t probes 90 $K --fwd-sweep tc16-out,tc16-out-no-products,tc16-out-no-loads,tc16-out-no-stage --fwd-sweep-rounds 2
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('probes','nr'):
    for r in g(n).get('chunked',[]):
        print(n, r.get('pass'), r.get('dtype',''), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
        for name, row in (r.get('sweep') or {}).items():
            print(n, 'sweep', name, row.get('ms'), [round(x.get('kda_chunk_output', 0), 3) for x in row.get('kernelsMs', [])], row.get('error', ''))
PY
cat $OUT/summary.txt | cut -c1-1200; cat $OUT/times.txt
