#!/usr/bin/env bash
# Engineer kda10's sitting (tenth session): the KDA chunked forward at B=1, H=16, d=128, T=32768, each bench in its own
# process, most important first, under a time cap: f32 (as shipped), the Kt form (--fwd-kt-form on), bf16 inputs in
# the mixed mode (now --dtype bf16's default), the mixed mode in the Kt form, the ninth session's bf16 storage mode
# (--bf16-intermediates bf16), f32 without bounds clamps (--disable-robustness), a second round, then --check at T=2048.
E="bash .device-kda10/enter.sh"; C=".device-kda10/app/cli.mjs"; R=$OUT/raw; mkdir -p $R; START=$(date +%s)
CAP=${CAP:-150}
F="bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K="bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check"
t() { if [ $(( $(date +%s) - START )) -gt $CAP ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi
  local s=$(date +%s); local n=$1; shift; timeout 40 $E node $C "$@" > $R/$n.json 2> $R/$n.err; local rc=$?
  echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 300 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t f32-r1 $F
t kt-r1 $F --fwd-kt-form on
t bfmix-r1 $F --dtype bf16
t bfmixkt-r1 $F --dtype bf16 --fwd-kt-form on
t bfsto-r1 $F --dtype bf16 --bf16-intermediates bf16
t chk-kt $K --fwd-kt-form on
t chk-bfmix $K --dtype bf16
t norobust-r1 $F --disable-robustness
t f32-r2 $F
t kt-r2 $F --fwd-kt-form on
t bfmix-r2 $F --dtype bf16
t bfmixkt-r2 $F --dtype bf16 --fwd-kt-form on
t chk-bfmixkt $K --dtype bf16 --fwd-kt-form on
t bfsto-r2 $F --dtype bf16 --bf16-intermediates bf16
t kt-r3 $F --fwd-kt-form on
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
