# Sixth session, engineer decrest: one sitting, each bench in its own process. Bundle: scripts/device-prepare.sh
# of branch s6-decrest, copied to .device-decrest. `run` with carry [".device-decrest"], command: bash <this file>.
E="bash .device-decrest/enter.sh"; C=".device-decrest/app/cli.mjs"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --variants hybrid --cache-dtype int8"
X="--context 4096,131072,1048576"
# The step of the session's start: this session's three changes off.
OFF="--no-fold-route --no-fuse-cache-write --no-gemv-prefetch"
t() { local s=$(date +%s); local n=$1; shift; timeout 90 "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; }
t start $D $X $OFF
t new $D $X --check
t new-prof $D --context 4096 --profile
t start-prof $D --context 4096 --profile $OFF
# Batch > 1 (the router folded at 2..4 tokens, the cache write fused at any batch; 7: the batch-limited size at 1M).
t b-start $D --context 131072 --batch 2,4,7 $OFF
t b-new $D --context 131072 --batch 2,4,7
t no-prefetch $D $X --no-gemv-prefetch
cat $OUT/times.txt
python3 -c "
import json,os
O=os.environ['OUT']
for n in ('start','new','no-prefetch','b-start','b-new','new-prof','start-prof'):
  try: d=json.load(open(f'{O}/{n}.json'))
  except Exception as e: print(n,'ERR',e); continue
  if d.get('check'): print(n, 'check', {k:v for k,v in d['check']['hybrid'].items() if 'Tokens' not in k})
  for r in d['rows']:
    p=r.get('profile')
    print(n, r['context'], r.get('batch'), round(r['tpotMs'],3), round(r.get('hostMs') or 0,3), r.get('dispatchesPerStep'), p and p.get('gpuMs'))
    if p: print('   ', ' '.join(f\"{k['name']}={k['ms']}/{k['dispatches']}\" for k in p['kernels']))
"
grep -hv Warning $OUT/*.err | tail -6
