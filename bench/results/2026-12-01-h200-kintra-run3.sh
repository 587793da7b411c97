#!/usr/bin/env bash
# kintra's third sitting (if a warm machine allows): the two-pass intra as the default against the one-pass
# kernel, and the second kernel's 'uniform' loads, T=32768; the check of the uniform loads at T=2048.
D=.device-kintra; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/kraw3; mkdir -p $R $OUT/json
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 300 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
t def 45 $K
t uni 45 $K --fwd-intra-wu-loads uniform
t one 45 $K --fwd-intra-two-pass off
t checkuni 60 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-intra-wu-loads uniform
t uni2 45 $K --fwd-intra-wu-loads uniform
t def2 45 $K
cp $R/def.json $R/uni.json $R/checkuni.json $OUT/json/ 2>/dev/null
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('def','uni','one','checkuni','uni2','def2'):
    try: k=json.load(open(f'/tmp/kraw3/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]): print(n, r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()}, r.get('check'))
PY
cat $OUT/summary.txt $OUT/times.txt
