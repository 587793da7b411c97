#!/usr/bin/env bash
# Lead's confirming sitting (seventh session): the defaults as shipped (W | U walk 4 by default; MoE down at 128
# lanes, which the final sitting's bench decode overrode to 32).
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 45 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t kda32k 20 $E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward
t dec-max 40 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 4 --context 1048576 --max-batch --memory-gb 135 --cache-dtype int8 --unsafe-apis
t dec-i8 25 $E node $C bench decode --preset kimi-linear-48b-a3b --json --steps 8 --context 4096,131072 --variants hybrid --cache-dtype int8 --unsafe-apis
python3 - > $OUT/summary.txt <<'PY'
import json
def g(n):
    try: return json.load(open(f'/tmp/r/{n}.json'))
    except Exception as e: return {}
k=g('kda32k')
for r in k.get('chunked',[]): print('kda32k', r.get('pass'), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()})
for n in ('dec-max','dec-i8'):
    d=g(n); print(n, 'moeLanes', d.get('moeLanes'))
    for r in d.get('rows',[]): print(n, r.get('model'), r.get('context'), r.get('batch'), round(r.get('tpotMs',0),3), round(r.get('hostMs') or 0,2), r.get('dispatchesPerStep'))
    for x in ('batchLimited','ratios'):
        if d.get(x): print(n, x, json.dumps(d[x]))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt; cat $OUT/times.txt
