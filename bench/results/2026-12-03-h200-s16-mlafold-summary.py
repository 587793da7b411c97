# Summary of the mlafold sitting's raw JSON (argument: the folder): TPOT and median step per context, the fold
# flag, the check's fields, the profile's dispatch count and MLA kernels.
import json, os, sys
O = sys.argv[1]
for f in sorted(os.listdir(O)):
    if not f.endswith('.json'): continue
    n = f[:-5]
    try:
        s = open(f'{O}/{f}').read(); d = json.loads(s[s.index('{'):])
    except Exception as e:
        print(n, 'loadError', e); continue
    print(n, 'mlaFoldQuery', d.get('mlaFoldQuery'), 'mlaFoldCacheWrite', d.get('mlaFoldCacheWrite'), 'kernel', d.get('mlaInt8Kernel'))
    for r in d.get('rows', []):
        st = sorted(r.get('stepMs') or [0])
        print(n, r.get('model'), r.get('context'), 'tpot', round(r.get('tpotMs', 0), 4), 'median', st[len(st)//2], 'dispatchesPerStep', r.get('dispatchesPerStep'))
        p = r.get('profile')
        if p:
            print(n, 'profile gpuMs', p.get('gpuMs'), 'dispatches', p.get('dispatches'))
            for k in p.get('kernels', []):
                if k['name'] in ('head_gemv', 'mla_int8_f16_query', 'mla_decode_int8_f16', 'mla_merge', 'norm_cache_write', 'gemv', 'norm_gemv'):
                    print(n, '  ', k['name'], k['ms'], k['dispatches'])
    c = d.get('check')
    if c:
        print(n, 'check', json.dumps({k: v for k, v in c.items() if not isinstance(v, list)}))
        print(n, 'check tokens', c.get('pipelinedTokens'), c.get('plainTokens'))
