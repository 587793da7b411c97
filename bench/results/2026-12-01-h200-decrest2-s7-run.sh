#!/usr/bin/env bash
# Seventh session, engineer decrest2: one sitting, each bench in its own process (48B preset, batch 1, int8
# cache, tensor-core attention). Bundle: scripts/device-prepare.sh of branch s7-decrest2, copied to
# .device-decrest2 (of commit 8cd9548 or later: earlier bundles fail on --pad-dispatches 0); `run` with carry
# [".device-decrest2"], command: bash <this file> (here carried as .device-decrest2/run.sh).
#   base    = --no-fold-kda-gate (the step of the session's start: the KDA gate GEMV apart; MoE 32 lanes x 8
#             rows, norm GEMVs 8 rows, as every run below unless it says otherwise)
#   new     = default (the gate folded into the recurrent step), with --check (vs the session's start too)
#   prof-*  = one step profiled at 4K (per-kernel and per-dispatch GPU ms), TPOT at 4K
#   pad     = 100 empty dispatches a step: (TPOT(pad) - TPOT(new)) / 100 = a dispatch boundary's cost
#   l128    = MoE down at 128 lanes a row (2 rows a workgroup)
#   l128r16 = that, and gate_up at 16 rows a workgroup (512 invocations: half the folded router's sorts)
#   l128r32 = that with gate_up at 32 rows (1024 invocations)
#   ng16    = the fused norm GEMVs at 16 rows a workgroup
#   combo   = l128r16 + ng16 at the three contexts
E="bash .device-decrest2/enter.sh"; C=".device-decrest2/app/cli.mjs"; R=/tmp/r; mkdir -p $R
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 --unsafe-apis"
X="--context 4096,131072,1048576 --steps 8"
P="--context 4096 --steps 16 --profile"
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t base 60 $D $X --no-fold-kda-gate
t new 80 $D $X --check
t prof-base 40 $D $P --no-fold-kda-gate
t prof-new 40 $D $P
t pad 40 $D --context 4096 --steps 16 --pad-dispatches 100
t l128 40 $D $P --moe-lanes 32,128
t l128r16 40 $D $P --moe-lanes 32,128 --moe-rows 16,2
t l128r32 40 $D $P --moe-lanes 32,128 --moe-rows 32,2
t ng16 40 $D $P --norm-gemv-rows 16
t combo 60 $D $X --moe-lanes 32,128 --moe-rows 16,2 --norm-gemv-rows 16
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('base','new','prof-base','prof-new','pad','l128','l128r16','l128r32','ng16','combo'):
    d=g(n)
    if d.get('check'): print(n, 'check', {k:v for k,v in d['check']['hybrid'].items() if 'Tokens' not in k})
    for r in d.get('rows',[]):
        p=r.get('profile')
        print(n, r.get('context'), round(r.get('tpotMs',0),3), round(r.get('hostMs') or 0,3), r.get('dispatchesPerStep'), p and p.get('gpuMs'))
        if p: print('   ', ' '.join(f"{k['name']}={k['ms']}/{k['dispatches']}" for k in p['kernels']))
PY
python3 -c "
import json,glob,os
out={}
for f in sorted(glob.glob('/tmp/r/*.json')):
  try: out[os.path.basename(f)[:-5]]=json.load(open(f))
  except Exception as e: out[os.path.basename(f)[:-5]]={'error':str(e)}
json.dump(out,open(os.environ['OUT']+'/all.json','w'))
"
cat $OUT/summary.txt $OUT/times.txt
