#!/usr/bin/env bash
# NOT RUN (kda10 had spent its device allotment): the sitting that tests sitting 2's reading, that the tiled state
# pass is ~0.24 ms slower when its W and U bindings are read-only (kdaForwardTuning.stateRwOperands asks for them
# read_write where no merge with the intra part's writes gives it). Copy to .device-<name>/ and run as
# `CAP=60 bash .device-<name>/run-next.sh` with carry [".device-<name>"] (~45 s of commands plus the start).
E="bash .device-kda10/enter.sh"; C=".device-kda10/app/cli.mjs"; R=$OUT/raw; mkdir -p $R; START=$(date +%s)
CAP=${CAP:-60}
F="bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K="bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check"
t() { if [ $(( $(date +%s) - START )) -gt $CAP ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi
  local s=$(date +%s); local n=$1; shift; timeout 30 $E node $C "$@" > $R/$n.json 2> $R/$n.err; local rc=$?
  echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 300 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t bfsto-rw $F --dtype bf16 --bf16-intermediates bf16 --fwd-state-rw-operands on   # storage mode: was 5.440, state 2.79
t bfsto $F --dtype bf16 --bf16-intermediates bf16
t kt-rw $F --fwd-kt-form on --fwd-state-rw-operands on                            # Kt form: was 5.667, state 3.02
t own-rw $F --fwd-shared-pipeline off --fwd-state-rw-operands on                  # own pipeline: was the shared one's gain this?
t own $F --fwd-shared-pipeline off
t bfmixkt-rw $F --dtype bf16 --fwd-kt-form on --fwd-state-rw-operands on          # was 5.437-5.446
t bfmix $F --dtype bf16                                                           # the default: 5.277
t f32 $F                                                                          # 5.470-5.476
t chk-bfsto-rw $K --dtype bf16 --bf16-intermediates bf16 --fwd-state-rw-operands on
t chk-kt-rw $K --fwd-kt-form on --fwd-state-rw-operands on
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
