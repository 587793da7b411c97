#!/usr/bin/env bash
# kfwd, fifth session, sitting 1: the forward's new kernels (halves state pass, gc in the intra pass, named
# output accumulators) against the session's starting kernels, each in its own process, T=32768, H=16, d=128.
E="bash .device-kfwd/enter.sh"; C=".device-kfwd/app/cli.mjs"
B="$E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile"
F="$B --skip-backward"
NEW="--fwd-state halves --fwd-gc intra --fwd-output-named on"
t() { local s=$(date +%s); local n=$1; shift; timeout 90 "$@" > $OUT/$n.json 2> $OUT/$n.err; echo "[$(( $(date +%s) - s )) s rc=$?] $n: $*" >> $OUT/times.txt; }
t base $B
t new-h2 $B $NEW --fwd-state-halves 2 --check
t new-h1 $F $NEW --fwd-state-halves 1
t h2-uk1 $F $NEW --fwd-state-halves 2 --fwd-state-uk 1
t h2-uk4 $F $NEW --fwd-state-halves 2 --fwd-state-uk 4
t h2-ui8 $F $NEW --fwd-state-halves 2 --fwd-state-ui 8
t h2-ui2 $F $NEW --fwd-state-halves 2 --fwd-state-ui 2
t h1-uk4-ui8 $F $NEW --fwd-state-halves 1 --fwd-state-uk 4 --fwd-state-ui 8
t h2-ra4 $F $NEW --fwd-state-halves 2 --fwd-state-rows 4
t base-fwd $F
python3 - <<'PY'
import json, os, glob
O=os.environ['OUT']
for f in sorted(glob.glob(O+'/*.json')):
    try: d=json.load(open(f))
    except Exception as e: print(os.path.basename(f), 'bad', e); continue
    for r in d.get('chunked',[]):
        print(os.path.basename(f)[:-5], r['pass'], round(r['ms'],3), {k.replace('kda_',''):round(v,3) for k,v in (r.get('kernelsMs') or {}).items() if v>0.05}, r.get('check',''))
print(open(O+'/times.txt').read())
PY
for f in $OUT/*.err; do grep -v Warning $f | tail -3 | sed "s#^#$(basename $f): #"; done
