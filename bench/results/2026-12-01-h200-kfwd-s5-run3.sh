#!/usr/bin/env bash
# kfwd, fifth session, sitting 3 (only on an already warm machine): the new default (pipelined output pass,
# 128 columns) with --check (vsSessionStart) and forward+backward, and the session-start kernels, own processes.
E="bash .device-kfwd/enter.sh"; C=".device-kfwd/app/cli.mjs"
B="$E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile"
OLD="--fwd-state tiled --fwd-gc pass --fwd-output-pipelined off"
mkdir -p /tmp/r
t() { local s=$(date +%s); local n=$1; shift; timeout 40 "$@" > /tmp/r/$n.json 2> /tmp/r/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n: ${*:5}" >> /tmp/r/times.txt; }
t new-check $B --check
t old $B $OLD --skip-backward
python3 - <<'PY'
import json, glob, os
R='/tmp/r'; out={}
for f in sorted(glob.glob(R+'/*.json')):
    n=os.path.basename(f)[:-5]
    try: out[n]=json.load(open(f))
    except Exception as e: out[n]={'error': str(e), 'stderr': open(R+'/'+n+'.err').read()[-1500:]}
out['times']=open(R+'/times.txt').read()
json.dump(out, open(os.environ['OUT']+'/kfwd-s5-run3.json','w'))
for n,d in out.items():
    if n=='times': continue
    for r in d.get('chunked',[]):
        print(n, r['pass'], round(r['ms'],3), {k.replace('kda_chunk_','').replace('kda_',''):round(v,3) for k,v in (r.get('kernelsMs') or {}).items() if v>0.05})
        if r.get('check'): print('  check', json.dumps(r['check']))
    if 'error' in d: print(n, 'ERROR', d['stderr'][-600:])
print(out['times'])
PY
