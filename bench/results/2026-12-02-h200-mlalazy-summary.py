#!/usr/bin/env python3
"""Summary of the mlalazy sitting's JSON (bench mla rows, sweep, checks; bench decode TPOT): python3 this.py DIR."""
import json, os, sys

d = sys.argv[1]
for name in ['var1', 'lazy', 'noflush', 'var2', 'chk']:
    p = os.path.join(d, name + '.json')
    try:
        j = json.load(open(p))
    except Exception as e:
        print(f'{name}: no JSON ({e})')
        continue
    print(f'== {name}')
    for r in j.get('decode', []):
        print(' row', r.get('context'), r.get('kernel'), r.get('chunks'), r.get('ms'), json.dumps(r.get('kernelsMs')), r.get('error', ''))
    for r in j.get('sweep', []):
        print(' var', r.get('context'), json.dumps(r.get('int8Sgm')), r.get('chunks'), r.get('ms'), r.get('error', ''))
    for c in j.get('checks', []):
        g = lambda k: (c.get(k) or {}).get('relToMax')
        print(' chk', c.get('kernel'), json.dumps(c.get('int8Sgm')), 'ref', g('vsInt8Reference'), 'dp4a', g('vsDp4aKernel'),
              'f32', g('vsF32Attention'), 'ref-f32', g('int8ReferenceVsF32Attention'), c.get('finite'), c.get('error', ''))


for name in ['dec-lazy', 'dec-default']:
    p = os.path.join(d, name + '.json')
    try:
        j = json.load(open(p))
    except Exception as e:
        print(f'{name}: no JSON ({e})')
        continue
    print(f'== {name}')
    for r in j.get('rows', []):
        print(' tpot', r.get('model'), r.get('context'), r.get('batch'), r.get('tpotMs'), r.get('error', ''))
    print(' checks', json.dumps(j.get('checks'))[:600])
