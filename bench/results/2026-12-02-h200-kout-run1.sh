#!/usr/bin/env bash
# kout's sitting (eighth session): the output pass and W | U variants swept in one process (T=2048: exactness vs
# the default; T=32768: 3 rounds of ms + per-kernel profile), then the shipped default in its own process.
E="bash .device-kout/enter.sh"; C=".device-kout/app/cli.mjs"
S=out-square,out-bk16,out-square-bk16,out-wg512,out-square-wg512,out-square-wg512-bk16,out-head-first,out-square-head-first,wu-static,wu-static-ahead2,wu-static-db,wu-static-ahead2-db,wu-head-first,wu-static-head-first,wu-static-ahead2-head-first,both-square-static,both-square-static-ahead2
s=$(date +%s)
timeout 130 $E node $C bench kda --json --T 2048,32768 --batch 1 --decode-heads 1 --skip-recompute --skip-backward --profile --fwd-sweep $S --fwd-sweep-rounds 3 > $OUT/sweep.json 2> $OUT/sweep.err; echo "sweep rc=$? $(( $(date +%s) - s )) s"
s=$(date +%s)
timeout 25 $E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward > $OUT/base.json 2> $OUT/base.err; echo "base rc=$? $(( $(date +%s) - s )) s"
grep -v Warning $OUT/sweep.err | tail -c 600
python3 - <<'PY'
import json, os, statistics as st
O = os.environ['OUT']
def load(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: print(n, 'unreadable', e); return {}
for r in load('base').get('chunked', []): print('base', r['T'], round(r['ms'], 3), r.get('kernelsMs'))
for r in load('sweep').get('chunked', []):
    print('row', r['T'], round(r['ms'], 3), r.get('kernelsMs'))
    for n, x in (r.get('sweep') or {}).items():
        ks = x.get('kernelsMs', [])
        med = lambda k: round(st.median([d.get(k, 0) for d in ks]), 4) if ks else None
        print(f"{r['T']} {n:28s} ms {x.get('ms')} out {med('kda_chunk_output')} wu {med('kda_chunk_intra_wu')} state {med('kda_chunk_state')} intra {med('kda_chunk_intra')} chk {x.get('check')} {x.get('error', '')[:150]}")
PY
