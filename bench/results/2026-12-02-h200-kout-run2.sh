#!/usr/bin/env bash
# kout's second sitting (eighth session): the output pass's two-chunk and double-buffered variants, the W | U walk
# with loads 2 and 3 tiles ahead, and both passes' best together, swept in one process (T=2048: exactness vs the
# default; T=32768: 3 rounds of ms + per-kernel profile).
E="bash .device-kout/enter.sh"; C=".device-kout/app/cli.mjs"
S=out-chunks2,out-db,out-chunks2-db,out-bk16-db,out-chunks2-db-head-first,wu-static-ahead2-db,wu-static-ahead3,wu-static-ahead3-db,both-db-static-ahead2-db,both-chunks2-db-static-ahead2-db
s=$(date +%s)
timeout 60 $E node $C bench kda --json --T 2048,32768 --batch 1 --decode-heads 1 --skip-recompute --skip-backward --profile --fwd-sweep $S --fwd-sweep-rounds 3 > $OUT/sweep.json 2> $OUT/sweep.err; echo "sweep rc=$? $(( $(date +%s) - s )) s"
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
        print(f"{r['T']} {n:34s} ms {x.get('ms')} out {med('kda_chunk_output')} wu {med('kda_chunk_intra_wu')} state {med('kda_chunk_state')} intra {med('kda_chunk_intra')} chk {x.get('check')} {x.get('error', '')[:150]}")
PY
