#!/usr/bin/env bash
# kout's third sitting (eighth session): the output pass's FMA-chain row updates (with the new W | U default), in
# one process (T=2048: vs the default; T=32768: 3 rounds of ms + per-kernel profile); 'wu-seventh' is the seventh
# session's W | U walk.
E="bash .device-kout/enter.sh"; C=".device-kout/app/cli.mjs"
S=out-fma,out-fma-head-first,out-fma-chunks2,wu-seventh,both-fma-seventh
s=$(date +%s)
timeout 40 $E node $C bench kda --json --T 2048,32768 --batch 1 --decode-heads 1 --skip-recompute --skip-backward --profile --fwd-sweep $S --fwd-sweep-rounds 3 > $OUT/sweep.json 2> $OUT/sweep.err; echo "sweep rc=$? $(( $(date +%s) - s )) s"
grep -v Warning $OUT/sweep.err | tail -c 600
python3 - <<'PY'
import json, os, statistics as st
O = os.environ['OUT']
try: d = json.load(open(f'{O}/sweep.json'))
except Exception as e: print('unreadable', e); d = {}
for r in d.get('chunked', []):
    print('row', r['T'], round(r['ms'], 3), r.get('kernelsMs'))
    for n, x in (r.get('sweep') or {}).items():
        ks = x.get('kernelsMs', [])
        med = lambda k: round(st.median([d.get(k, 0) for d in ks]), 4) if ks else None
        print(f"{r['T']} {n:20s} ms {x.get('ms')} out {med('kda_chunk_output')} wu {med('kda_chunk_intra_wu')} state {med('kda_chunk_state')} chk {x.get('check')} {x.get('error', '')[:150]}")
PY
