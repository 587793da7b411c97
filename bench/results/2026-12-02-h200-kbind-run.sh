#!/usr/bin/env bash
# Engineer kbind's sitting (tenth session, issue #3): every input of a forward pass bound read_write (bench kda
# --fwd-rw), kda10's unrun rows (--fwd-state-rw-operands: W, U only), with and without --disable-robustness, and the
# MLA tensor-core decode kernel's pool read_write (--int8-sgm poolRw). Run from the repository root on the device
# with carry [".device-kbind"] as `CAP=100 bash .device-kbind/run.sh`.
E="bash .device-kbind/enter.sh"; C=".device-kbind/app/cli.mjs"; R=$OUT/raw; mkdir -p $R; START=$(date +%s)
CAP=${CAP:-100}
F="bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward"
K="bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check"
t() { if [ $(( $(date +%s) - START )) -gt $CAP ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi
  local s=$(date +%s); local n=$1; shift; timeout 30 $E node $C "$@" > $R/$n.json 2> $R/$n.err; local rc=$?
  echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 300 | sed "s/^/  $n: /" >> $OUT/times.txt; }
t f32 $F
t f32-rw $F --fwd-rw all
t bf-rw $F --dtype bf16 --fwd-rw all
t bf $F --dtype bf16
t chk-rw $K --fwd-rw all
t chk-bf-rw $K --dtype bf16 --fwd-rw all
t f32-rw-nr $F --fwd-rw all --disable-robustness
t f32-nr $F --disable-robustness
t bf-rw-nr $F --dtype bf16 --fwd-rw all --disable-robustness
t bf-nr $F --dtype bf16 --disable-robustness
t mla-rw bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576,4096 --int8-kernels subgroup-matrix,dp4a --int8-variants none --sweep-chunks '' --int8-sgm poolRw
t mla bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576,4096 --int8-kernels subgroup-matrix,dp4a --int8-variants none --sweep-chunks ''
t own-rwop $F --fwd-shared-pipeline off --fwd-state-rw-operands on
t own-rw $F --fwd-shared-pipeline off --fwd-rw all
t own $F --fwd-shared-pipeline off
t scr-rwop $F --fwd-shared-idle-scratch on --fwd-state-rw-operands on
t kt-rw $F --fwd-kt-form on --fwd-rw all
t f32-rw-r2 $F --fwd-rw all
t f32-r2 $F
t bf-rw-r2 $F --dtype bf16 --fwd-rw all
t bf-r2 $F --dtype bf16
python3 - > $OUT/summary.txt <<'PY'
import json, os, glob
for f in sorted(glob.glob(os.environ['OUT'] + '/raw/*.json')):
    n = os.path.basename(f)[:-5]
    try: d = json.load(open(f))
    except Exception as e:
        print(n, 'unreadable', e); continue
    if n.startswith('mla'):
        for r in d.get('rows', d.get('int8', [])) if isinstance(d, dict) else []:
            print(n, json.dumps(r)[:300])
        continue
    for r in d.get('chunked', []):
        k = r.get('kernelsMs') or {}
        ks = ' '.join(f"{a.replace('kda_chunk_', '')} {b:.4f}" for a, b in k.items())
        print(f"{n:12s} T={r['T']} {r.get('dtype')} ms {r['ms']:.4f} | {ks}")
        if 'check' in r: print('   check', json.dumps(r['check']))
PY
cat $OUT/times.txt $OUT/summary.txt
tar -C $OUT -czf $OUT/raw.tgz raw && rm -rf $R
