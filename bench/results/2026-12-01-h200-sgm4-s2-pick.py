# Picks the fastest tensor-core variant at the largest context among those exact against dp4a (relToMax 0)
# in a bench mla --int8-variants sgm-wide JSON; prints its --int8-sgm string.
import json, sys
d = json.load(open(sys.argv[1]))
exact = set()
for c in d.get('checks', []):
    v = c.get('vsDp4aKernel') or {}
    if c.get('kernel') == 'int8-subgroup-matrix' and v.get('relToMax') == 0 and c.get('finite'):
        exact.add(json.dumps(c.get('int8Sgm') or {}, sort_keys=True))
best = None
for r in d.get('sweep', []):
    if r.get('kernel') != 'int8-subgroup-matrix' or 'ms' not in r or r.get('chunks'):
        continue
    k = json.dumps(r.get('int8Sgm') or {}, sort_keys=True)
    if k in exact and (best is None or r['ms'] < best[0]):
        best = (r['ms'], r.get('int8Sgm') or {})
if best is None:
    print('')
else:
    o = best[1]
    print(','.join(f'{k}={str(v).lower()}' for k, v in sorted(o.items())))
