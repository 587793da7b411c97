#!/usr/bin/env bash
# s12 gram sitting 2: on top of sitting 1's fastest form (dp): the row scales by shuffles (sgs), rotated f16 staging stores and
# result read-back (rot), fragments loaded before the f32 units (mo), their combinations, with pad; probes of
# dp-sgs-rot-mo. 1. T=2048 sweep (o and state of every form against the default); 2. T=32768 sweep (2 rounds);
# 3. --check at T=2048 of the sweep's fastest form (vsTc16GramOff), then it and the f32 kernel in own processes, twice.
D=.device-gram; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/gram2; mkdir -p $R; START=$(date +%s)
t() { if [ $(( $(date +%s) - START )) -gt 200 ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
A="--batch 1 --skip-recompute --skip-backward --dtype bf16 --unsafe-apis --f16 --json"
K="$E node $C bench kda --T 32768 --profile $A"
ALL=tc16-gram-dp,tc16-gram-dp-sgs,tc16-gram-dp-rot,tc16-gram-dp-mo,tc16-gram-dp-sgs-rot,tc16-gram-dp-sgs-rot-mo,tc16-gram-pad-dp-sgs-mo
PR=tc16-gram-dp-sgs-rot-mo-no-scale,tc16-gram-dp-sgs-rot-mo-no-f16,tc16-gram-dp-sgs-rot-mo-no-mma,tc16-gram-dp-sgs-rot-mo-no-f32
t chksw 60 $E node $C bench kda --T 2048 $A --fwd-sweep $ALL --fwd-sweep-rounds 1
t sweep 120 $K --fwd-sweep $ALL,$PR
BEST=$(python3 - <<'PY'
import json
try:
    sw = json.load(open('/tmp/gram2/sweep.json'))['chunked'][0]['sweep']
    c = {n: min(k.get('kda_chunk_intra', 9) for k in r['kernelsMs']) for n, r in sw.items() if n.startswith('tc16-gram') and '-no-' not in n and r.get('kernelsMs')}
    print(min(c, key=c.get))
except Exception:
    print('tc16-gram-dp-sgs-rot-mo')
PY
)
F="--fwd-tc16-gram on"; case $BEST in *pad*) F="$F --fwd-tc16-gram-pad on";; esac; case $BEST in *halves*) F="$F --fwd-tc16-gram-halves on";; esac; case $BEST in *dp*) F="$F --fwd-tc16-gram-diag-prefetch on";; esac; case $BEST in *sgs*) F="$F --fwd-tc16-gram-shuffle-scale on";; esac; case $BEST in *rot*) F="$F --fwd-tc16-gram-rot on";; esac; case $BEST in *-mo*) F="$F --fwd-tc16-gram-mma-overlap on";; esac
echo "best $BEST: $F" >> $OUT/times.txt
t chk 60 $E node $C bench kda --T 2048 --check $A $F
t best 30 $K $F
t off 30 $K --fwd-tc16-gram off
t best2 30 $K $F
t off2 30 $K --fwd-tc16-gram off
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('chksw', 'sweep', 'chk', 'best', 'off', 'best2', 'off2'):
    try: k = json.load(open(f'/tmp/gram2/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked', []):
        print(n, r.get('T'), round(r.get('ms', 0), 3), {a: round(b, 3) for a, b in (r.get('kernelsMs') or {}).items() if a.startswith('kda')})
        if r.get('check'): print(n, 'check', json.dumps(r['check'])[:1200])
        for name, s in (r.get('sweep') or {}).items():
            print(n, 'sweep', name, s.get('ms'), [round(x.get('kda_chunk_intra', 0), 3) for x in s.get('kernelsMs', [])], s.get('check', ''), s.get('error', ''))
PY
cp $OUT/times.txt $OUT/summary.txt $R/ 2>/dev/null; tar -C $R -czf $OUT/raw.tgz .
