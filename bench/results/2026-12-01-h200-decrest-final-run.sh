E="bash .device-decrest/enter.sh"; C=".device-decrest/app/cli.mjs"; D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --variants hybrid"; X="--context 4096,131072,1048576"; OLD="--no-replay --no-fuse-conv --no-rank-route --no-fold-shared --gemv-unroll 1"
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu,clocks_throttle_reasons.active --format=csv -lms 1000 > $OUT/smi.csv 2>&1 & SMI=$!
t() { local s=$(date +%s); local n=$1; shift; timeout 60 "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; }
t old-i8 $D $X --cache-dtype int8 $OLD --profile
t new-i8 $D $X --cache-dtype int8 --profile --check
t old-bf16 $D $X --cache-dtype bf16 $OLD
t new-bf16 $D $X --cache-dtype bf16
t new-i8-u2 $D --context 4096 --cache-dtype int8 --gemv-unroll 2 --profile
t new-i8-1m-indep $D --context 1048576 --cache-dtype int8 --independent-steps
kill $SMI; cat $OUT/times.txt
python3 -c "
import json,os
O=os.environ['OUT']
for n in ('old-i8','new-i8','old-bf16','new-bf16','new-i8-u2','new-i8-1m-indep'):
  try: d=json.load(open(f'{O}/{n}.json'))
  except Exception as e: print(n,'ERR',e); continue
  if d.get('check'): print(n, 'check', {k:v for k,v in d['check']['hybrid'].items() if 'Tokens' not in k})
  for r in d['rows']: print(n, r['context'], round(r['tpotMs'],3), round(r.get('hostMs') or 0,3), r.get('dispatchesPerStep'), r.get('profile',{}).get('gpuMs'))
"
grep -v Warning $OUT/*.err | tail -4; tail -3 $OUT/smi.csv
