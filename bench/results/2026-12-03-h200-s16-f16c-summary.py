# Summary of the f16c sittings' raw JSON (argument: the folder): decode rows (TPOT, median step), checks, bench mla rows.
import json, os, sys
O = sys.argv[1]
def g(n):
    try:
        s = open(f'{O}/{n}'.replace('.json.json', '.json')).read(); return json.loads(s[s.index('{'):])
    except Exception as e: return {'loadError': str(e)}
for f in sorted(os.listdir(O)):
    if not f.endswith('.json'): continue
    n = f[:-5]; d = g(f)
    if 'loadError' in d: print(n, d); continue
    if d.get('bench') == 'mla':
        for r in d.get('decode', []):
            print(n, 'row', r.get('context'), r.get('kernel'), json.dumps(r.get('int8F16')), r.get('ms'), r.get('trialsMs'), json.dumps(r.get('kernelsMs')), r.get('error', '')[:300])
        for r in d.get('checks', []):
            print(n, 'check', json.dumps({k: (v.get('relToMax') if isinstance(v, dict) else v) for k, v in r.items() if k not in ('int8Sgm',)})[:600])
        for r in d.get('crossChecks') or []:
            print(n, 'cross', r.get('context'), r.get('kernel'), r.get('against'), r.get('relToMax'), r.get('finite'))
        continue
    for r in d.get('rows', []):
        st = sorted(r.get('stepMs') or [0])
        print(n, r.get('variant'), r.get('context'), 'tpot', round(r.get('tpotMs', 0), 3), 'median', st[len(st)//2], 'steps', r.get('stepMs'))
    for k, c in (d.get('check') or {}).items():
        print(n, 'check', k, json.dumps(c)[:500])
    print(n, 'kernel', d.get('mlaF16CacheKernel') or d.get('mlaInt8Kernel'), json.dumps(d.get('mlaInt8F16')))
