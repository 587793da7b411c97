#!/usr/bin/env bash
# kbwd fifth session, sitting 3 (only if a warm machine is free): the final defaults, own process and inside the full bench kda.
E="bash .device-kbwd/enter.sh"; C=".device-kbwd/app/cli.mjs"
$E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile > $OUT/final.json 2>/dev/null
$E node $C bench kda --json --profile > $OUT/full.json 2>/dev/null
python3 - <<'PY'
import json, os
O=os.environ['OUT']
for n in ('final','full'):
    try: d=json.load(open(f'{O}/{n}.json'))
    except Exception as e: print(n,'ERR',e); continue
    for r in d.get('chunked',[]):
        if r.get('T')==32768: print(n, r['pass'], round(r['ms'],3), {k[4:]:round(v,3) for k,v in r.get('kernelsMs',{}).items() if k.startswith('kda_bwd')})
PY
