#!/usr/bin/env bash
# kintra's second sitting: the two-pass intra with straight-line loads in intraWU (and beta loaded early in
# intraGram) against the one-pass kernel, T=32768; the check at T=2048.
D=.device-kintra; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/kraw; mkdir -p $R $OUT/json
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
t base 45 $K
t two 45 $K --fwd-intra-two-pass on
t twonopf 45 $K --fwd-intra-two-pass on --fwd-intra-gram-prefetch off
t twouni 45 $K --fwd-intra-two-pass on --fwd-intra-wu-loads uniform
t checkuni 90 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-intra-two-pass on --fwd-intra-wu-loads uniform
t check 90 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-intra-two-pass on
t base2 45 $K
t two2 45 $K --fwd-intra-two-pass on
t twouni2 45 $K --fwd-intra-two-pass on --fwd-intra-wu-loads uniform
cp $R/base.json $R/two.json $R/check.json $OUT/json/ 2>/dev/null
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('base','two','twonopf','twouni','check','checkuni','base2','two2','twouni2'):
    try: k=json.load(open(f'/tmp/kraw/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]): print(n, r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()}, r.get('check'))
PY
cat $OUT/summary.txt $OUT/times.txt
