#!/usr/bin/env bash
# kfwd, fifth session, sitting 2: the pipelined output pass, the split intra products and fully unrolled halves state
# passes against the session-start kernels (OLD, explicit), each in its own process, T=32768, H=16, d=128; --check on the
# candidates (vsSessionStart: max relative difference of o and S against OLD in the same process).
E="bash .device-kfwd/enter.sh"; C=".device-kfwd/app/cli.mjs"
B="$E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile"
F="$B --skip-backward"
OLD="--fwd-state tiled --fwd-gc pass --fwd-output-named off --fwd-output-pipelined off --fwd-intra-split off"
H2="--fwd-state halves --fwd-state-halves 2"
mkdir -p /tmp/r
t() { local s=$(date +%s); local n=$1; shift; timeout 60 "$@" > /tmp/r/$n.json 2> /tmp/r/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n: ${*:5}" >> /tmp/r/times.txt; }
t old $B $OLD
t pipe $F --fwd-output-pipelined on
t pipe128 $F --fwd-output-pipelined on --fwd-output-bv 128
t isplit $F --fwd-intra-split on
t h2-full $F $H2 --fwd-state-uk 16 --fwd-state-ui 32
t h2-uk8 $F $H2 --fwd-state-uk 8 --fwd-state-ui 16
t h1-full $F --fwd-state halves --fwd-state-halves 1 --fwd-state-uk 32 --fwd-state-ui 64
t old-norobust $F $OLD --disable-robustness
t all3-check $B --fwd-output-pipelined on --fwd-intra-split on $H2 --fwd-state-uk 16 --fwd-state-ui 32 --check
t pipe-isplit $B --fwd-output-pipelined on --fwd-intra-split on
t old-again $F $OLD
python3 - <<'PY'
import json, glob, os
R='/tmp/r'; out={}
for f in sorted(glob.glob(R+'/*.json')):
    n=os.path.basename(f)[:-5]
    try: out[n]=json.load(open(f))
    except Exception as e: out[n]={'error': str(e), 'stderr': open(R+'/'+n+'.err').read()[-1500:]}
out['times']=open(R+'/times.txt').read()
json.dump(out, open(os.environ['OUT']+'/kfwd-s5-run2.json','w'))
for n,d in out.items():
    if n=='times': continue
    for r in d.get('chunked',[]):
        print(n, r['pass'], round(r['ms'],3), {k.replace('kda_chunk_','').replace('kda_',''):round(v,3) for k,v in (r.get('kernelsMs') or {}).items() if v>0.05})
        if r.get('check'): print('  check', json.dumps(r['check']))
    if 'error' in d: print(n, 'ERROR', d['stderr'][-600:])
print(out['times'])
PY
