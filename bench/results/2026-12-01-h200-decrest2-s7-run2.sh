#!/usr/bin/env bash
# decrest2's measurement for the next sitting (NOT RUN in the seventh session: the engineer's device allotment went
# to sitting 1's cold start). Bundle: scripts/device-prepare.sh of branch s7-decrest2 at commit >= the one adding
# --sweep, copied to .device-decrest2 (and this file to .device-decrest2/run2.sh); `run` with carry
# [".device-decrest2"], command: bash .device-decrest2/run2.sh. ~60-70 s of command on a warm machine.
#   new   = the default step (KDA f_b/g_b folded into the recurrent kernel), 3 contexts, --check
#           (check.hybrid.session7LogitsMaxRelDiff: against the seventh session's start, i.e. --no-fold-kda-gate)
#   base  = --no-fold-kda-gate, 3 contexts (the step of the session's start)
#   sweep = one process, 4K, one profiled step per variant (per-kernel and per-dispatch GPU ms in rows[].profile)
E="bash .device-decrest2/enter.sh"; C=".device-decrest2/app/cli.mjs"; R=/tmp/r; mkdir -p $R
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 --unsafe-apis"
X="--context 4096,131072,1048576 --steps 8"
S='[{"label":"base","foldKdaGate":false},{"label":"new"},{"label":"pad100","padDispatches":100},
{"label":"l128","moeLanes":[32,128]},{"label":"l128r16","moeLanes":[32,128],"moeRows":[16,2]},
{"label":"l128r32","moeLanes":[32,128],"moeRows":[32,2]},{"label":"r16","moeRows":[16,8]},
{"label":"gu2","moeUnrollGateUp":2},{"label":"ng16","normGemvRows":16},{"label":"ng32","normGemvRows":32},
{"label":"u8","gemvUnroll":8},{"label":"new-again"}]'
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t new 80 $D $X --check
t base 60 $D $X --no-fold-kda-gate
t sweep 120 $D --context 4096 --steps 16 --profile --sweep "$S"
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('new','base','sweep'):
    d=g(n)
    if d.get('check'): print(n, 'check', {k:v for k,v in d['check']['hybrid'].items() if 'Tokens' not in k})
    for r in d.get('rows',[]):
        p=r.get('profile')
        print(n, r.get('sweep',''), r.get('context'), round(r.get('tpotMs',0),3), round(r.get('hostMs') or 0,3), r.get('dispatchesPerStep'), p and p.get('gpuMs'))
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
