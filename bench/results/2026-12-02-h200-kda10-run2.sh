#!/usr/bin/env bash
# Engineer kda10's second sitting (tenth session): sitting 1 read the state pass 0.24-0.26 ms slower in the mixed mode
# and in the Kt form, both of which bound the shared pipeline's idle intra part to scratch tensors then (the state
# part's bindings read-only and its own); now they bind the forward's own tensors (kdaForwardTuning.sharedIdleScratch
# unset) and the f32 default is timed with the scratch binding (--fwd-shared-idle-scratch on) to test that reading.
E="bash .device-kda10/enter.sh"; C=".device-kda10/app/cli.mjs"; R=$OUT/raw; mkdir -p $R; START=$(date +%s)
CAP=${CAP:-40}
F="bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K="bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check"
t() { if [ $(( $(date +%s) - START )) -gt $CAP ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi
  local s=$(date +%s); local n=$1; shift; timeout 30 $E node $C "$@" > $R/$n.json 2> $R/$n.err; local rc=$?
  echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 300 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t f32scr-r1 $F --fwd-shared-idle-scratch on
t kt-r1 $F --fwd-kt-form on
t bfmix-r1 $F --dtype bf16
t bfmixkt-r1 $F --dtype bf16 --fwd-kt-form on
t f32-r1 $F
t chk-bfmixkt $K --dtype bf16 --fwd-kt-form on
t chk-kt $K --fwd-kt-form on
t kt-r2 $F --fwd-kt-form on
t bfmixkt-r2 $F --dtype bf16 --fwd-kt-form on
t bfmix-r2 $F --dtype bf16
python3 - > $OUT/summary.txt <<'PY'
import json, os, glob
for f in sorted(glob.glob(os.environ['OUT'] + '/raw/*.json')):
    n = os.path.basename(f)[:-5]
    try: d = json.load(open(f))
    except Exception as e:
        print(n, 'unreadable', e); continue
    for r in d.get('chunked', []):
        k = r.get('kernelsMs') or {}
        ks = ' '.join(f"{a.replace('kda_chunk_', '')} {b:.4f}" for a, b in k.items())
        print(f"{n:14s} T={r['T']} {r.get('dtype')} ms {r['ms']:.4f} | {ks}")
        if 'check' in r: print('   check', json.dumps(r['check']))
PY
cat $OUT/times.txt $OUT/summary.txt
tar -C $OUT -czf $OUT/raw.tgz raw && rm -rf $R
