E="bash .device-decrest/enter.sh"; C=".device-decrest/app/cli.mjs"; D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --variants hybrid"
t() { local s=$(date +%s); local n=$1; shift; timeout 100 "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; }
t new-i8-prof $D --context 4096,1048576 --cache-dtype int8 --profile --host-profile --check
t old-i8 $D --context 4096,1048576 --cache-dtype int8 --no-replay --no-fuse-conv
cat $OUT/times.txt
python3 -c "
import json,os
O=os.environ['OUT']
for n in ('new-i8-prof','old-i8'):
  try: d=json.load(open(f'{O}/{n}.json'))
  except Exception as e: print(n,'ERR',e); continue
  print(n, d.get('check'))
  for r in d['rows']: print(r['context'], round(r['tpotMs'],3), round(r['recordMs'],3), round(r.get('hostMs') or 0,3), r.get('dispatchesPerStep'), r.get('stepCounts'), r.get('profile',{}).get('gpuMs'))
"
grep -v Warning $OUT/*.err | tail -5
