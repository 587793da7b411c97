#!/usr/bin/env bash
# s12 gram sitting 1: the tensor-core first kernel (intraGramTc16) with padded f16 rows (pad), the results in two
# rounds (halves: 28.25 KiB), the diagonal threads' loads a tile ahead (dp), and their combinations, against the
# f32 intraGram (default). Run from the main checkout's ignored .device-gram (the device tool sends the main checkout).
# 1. --check at T=2048 (all forms on; vsTc16GramOff) and a T=2048 sweep (every form's o and state against the default);
# 2. T=32768 sweep (2 rounds, with skip probes of pad-halves-dp);
# 3. the sweep's fastest form and the f32 kernel each in its own process, twice.
D=.device-gram; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/gram1; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
A="--batch 1 --skip-recompute --skip-backward --dtype bf16 --unsafe-apis --f16 --json"
K="$E node $C bench kda --T 32768 --profile $A"
ALL=tc16-gram,tc16-gram-pad,tc16-gram-halves,tc16-gram-dp,tc16-gram-pad-halves,tc16-gram-halves-dp,tc16-gram-pad-halves-dp
PR=tc16-gram-pad-halves-dp-no-scale,tc16-gram-pad-halves-dp-no-f16,tc16-gram-pad-halves-dp-no-mma,tc16-gram-pad-halves-dp-no-f32
t chk 60 $E node $C bench kda --T 2048 --check $A --fwd-tc16-gram on --fwd-tc16-gram-pad on --fwd-tc16-gram-halves on --fwd-tc16-gram-diag-prefetch on
t chksw 60 $E node $C bench kda --T 2048 $A --fwd-sweep $ALL --fwd-sweep-rounds 1
t sweep 120 $K --fwd-sweep $ALL,$PR
BEST=$(python3 - <<'PY'
import json
try:
    sw = json.load(open('/tmp/gram1/sweep.json'))['chunked'][0]['sweep']
    c = {n: min(k.get('kda_chunk_intra', 9) for k in r['kernelsMs']) for n, r in sw.items() if n.startswith('tc16-gram') and '-no-' not in n and r.get('kernelsMs')}
    print(min(c, key=c.get))
except Exception:
    print('tc16-gram-pad-halves-dp')
PY
)
F="--fwd-tc16-gram on"; case $BEST in *pad*) F="$F --fwd-tc16-gram-pad on";; esac; case $BEST in *halves*) F="$F --fwd-tc16-gram-halves on";; esac; case $BEST in *dp*) F="$F --fwd-tc16-gram-diag-prefetch on";; esac
echo "best $BEST: $F" >> $OUT/times.txt
t best 30 $K $F
t off 30 $K --fwd-tc16-gram off
t best2 30 $K $F
t off2 30 $K --fwd-tc16-gram off
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('chk', 'chksw', 'sweep', 'best', 'off', 'best2', 'off2'):
    try: k = json.load(open(f'/tmp/gram1/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked', []):
        print(n, r.get('T'), round(r.get('ms', 0), 3), {a: round(b, 3) for a, b in (r.get('kernelsMs') or {}).items() if a.startswith('kda')})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:1200])
        for name, s in (r.get('sweep') or {}).items():
            print(n, 'sweep', name, s.get('ms'), [round(x.get('kda_chunk_intra', 0), 3) for x in s.get('kernelsMs', [])], s.get('check', ''), s.get('error', ''))
PY
cp $OUT/times.txt $OUT/summary.txt $R/ 2>/dev/null; tar -C $R -czf $OUT/raw.tgz .
