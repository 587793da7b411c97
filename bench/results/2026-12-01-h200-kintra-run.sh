#!/usr/bin/env bash
# kintra's sitting (seventh session): the intra pass of the KDA forward, T=32768 (issue #3): the one-pass kernel
# with each step left out (--fwd-intra-skip), the two-pass intra (--fwd-intra-two-pass on), its check.
# Run on the device from the repository root with the bundle at .device-kintra (carried).
D=.device-kintra; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=$OUT/raw; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
t base 45 $K
t two 45 $K --fwd-intra-two-pass on
t twonopf 45 $K --fwd-intra-two-pass on --fwd-intra-gram-prefetch off
t check 90 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-intra-two-pass on
t skipP 45 $K --fwd-intra-skip products
t skipI 45 $K --fwd-intra-skip inverse
t skipW 45 $K --fwd-intra-skip wu
t base2 45 $K
t two2 45 $K --fwd-intra-two-pass on
t twonopf2 45 $K --fwd-intra-two-pass on --fwd-intra-gram-prefetch off
t skipP2 45 $K --fwd-intra-skip products
t skipI2 45 $K --fwd-intra-skip inverse
t skipW2 45 $K --fwd-intra-skip wu
python3 - > $OUT/summary.txt <<'PY'
import json, os
R=os.environ['OUT']+'/raw'
for n in ('base','two','twonopf','check','skipP','skipI','skipW','base2','two2','twonopf2','skipP2','skipI2','skipW2'):
    try: k=json.load(open(f'{R}/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]): print(n, r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()}, r.get('check'))
PY
cat $OUT/summary.txt $OUT/times.txt
