# Sitting 2: the MoE decode kernels up to 8 tokens (new) against the grouped path past 4 (old), batch 7.
E="bash .device-decrest/enter.sh"; C=".device-decrest/app/cli.mjs"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --variants hybrid --cache-dtype int8 --context 131072,1048576 --batch 7"
t() { local s=$(date +%s); local n=$1; shift; timeout 80 "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; }
t b7-old $D --moe-decode-max-tokens 4
t b7-new $D
cat $OUT/times.txt
python3 -c "
import json,os
O=os.environ['OUT']
for n in ('b7-old','b7-new'):
  try: d=json.load(open(f'{O}/{n}.json'))
  except Exception as e: print(n,'ERR',e); continue
  for r in d['rows']: print(n, r['context'], r.get('batch'), round(r['tpotMs'],3), round(r.get('hostMs') or 0,3), r.get('dispatchesPerStep'), round(r.get('tokensPerS') or 0,1))
"
grep -hv Warning $OUT/*.err | tail -6
