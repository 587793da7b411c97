#!/usr/bin/env bash
# Lead's sitting 4 (sixth session): the bf16-cache hybrid at 128K (9.68 ms in sitting 2 against 6.96 in the fifth
# session) again, with and without this session's decode fusions.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 1200 | sed "s/^/  $n: /" >> $OUT/times.txt; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --variants hybrid"
t dec-hyb 60 $D --context 4096,131072,1048576
t dec-hyb-start 60 $D --context 131072 --no-fold-route --no-fuse-cache-write --moe-decode-max-tokens 4
t dec-hyb-again 60 $D --context 131072
python3 - > $OUT/summary.txt <<'PY'
import json
def g(n):
    try: return json.load(open(f'/tmp/r/{n}.json'))
    except Exception as e: return {}
for n in ('dec-hyb','dec-hyb-start','dec-hyb-again'):
    d=g(n); print(n, [(r.get('context'), r.get('batch'), round(r.get('tpotMs',0),2), round(r.get('hostMs',0) or 0,2), r.get('dispatchesPerStep')) for r in d.get('rows',[])])
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt $OUT/times.txt
