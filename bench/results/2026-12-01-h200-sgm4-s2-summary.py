import json, glob, os, sys
O = sys.argv[1]
for f in sorted(glob.glob(f'{O}/*.json')):
    try: d = json.load(open(f))
    except Exception as e: print(os.path.basename(f), 'unreadable', e); continue
    n = os.path.basename(f)
    if d.get('bench') == 'mla':
        for r in d['decode']:
            print(n, 'ROW', r.get('context'), r.get('kernel'), r.get('int8Sgm'), r.get('ms'), r.get('kernelsMs'), r.get('error'))
        for r in d['sweep']:
            print(n, 'SW', r.get('chunks'), r.get('int8Sgm'), r.get('ms'), r.get('error'))
        for c in d['checks']:
            print(n, 'CHK', c.get('kernel'), c.get('int8Sgm'), (c.get('vsDp4aKernel') or {}).get('relToMax'), (c.get('vsF32Attention') or {}).get('relToMax'), c.get('error'))
    else:
        for r in d.get('rows', []):
            print(n, 'DEC', r.get('context'), r.get('batch'), r.get('tpotMs'), r.get('hostMs'), {k: v for k, v in r.items() if 'check' in k.lower()})
        print(n, 'mlaInt8Kernel', d.get('mlaInt8Kernel'), 'keys', list(d.keys())[:12])
