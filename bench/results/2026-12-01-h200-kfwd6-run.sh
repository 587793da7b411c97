#!/usr/bin/env bash
# kfwd6's sitting (sixth session): KDA forward T=32768 variants in one sitting (issue #3).
E="bash .device-kfwd6/enter.sh"; C=".device-kfwd6/app/cli.mjs"; R=$OUT/raw; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
t base 45 $K
t kd 45 $K --fwd-kd-in-state on
t so 45 $K --fwd-shared-output on
t kdso 45 $K --fwd-kd-in-state on --fwd-shared-output on
t check 60 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-kd-in-state on --fwd-shared-output on
t rows1 45 $K --fwd-state-rows 1
t halves 45 $K --fwd-state halves --fwd-state-uk 16 --fwd-state-ui 32
t base2 45 $K
python3 - > $OUT/summary.txt <<'PY'
import json, os
R=os.environ['OUT']+'/raw'
for n in ('base','kd','so','kdso','check','rows1','halves','base2'):
    try: k=json.load(open(f'{R}/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]): print(n, r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()}, r.get('check'))
PY
cat $OUT/summary.txt $OUT/times.txt
