#!/usr/bin/env bash
# kintra2's variants of the two-pass intra's second kernel (intraWU): each workgroup walking 2 or 4 column tiles
# (--fwd-intra-wu-walk) and 2 chunks (--fwd-intra-wu-chunks), with 'uniform' loads around whole walks, with the operand double-buffered
# (--fwd-intra-wu-double-b, 48 KiB of workgroup memory), and the first kernel (intraGram) storing A_qk and T
# from workgroup memory (--fwd-intra-gram-staged-stores), against the default one-tile kernel, T=32768 (H=16,
# d=128); the checks at T=2048 (vsDefault: the variant against the shipped defaults, expected 0).
# Run from the project root on the device after `bash scripts/device-prepare.sh` (D: the packed folder).
D=${D:-.device}; E="bash $D/enter.sh"; C="$D/app/cli.mjs"; R=/tmp/kraw2; mkdir -p $R $OUT/json
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 600 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 1 --skip-recompute --profile --skip-backward --fwd-intra-two-pass on"
X="$E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-intra-two-pass on"
t one 45 $K
t w2 45 $K --fwd-intra-wu-walk 2
t w4 45 $K --fwd-intra-wu-walk 4
t w2u 45 $K --fwd-intra-wu-walk 2 --fwd-intra-wu-loads uniform
t w4u 45 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform
t w4db 45 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-double-b on
t w2udb 45 $K --fwd-intra-wu-walk 2 --fwd-intra-wu-loads uniform --fwd-intra-wu-double-b on
t w4uc2 45 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform --fwd-intra-wu-chunks 2
t w2uc2 45 $K --fwd-intra-wu-walk 2 --fwd-intra-wu-loads uniform --fwd-intra-wu-chunks 2
t uni 45 $K --fwd-intra-wu-loads uniform
t gss 45 $K --fwd-intra-gram-staged-stores on
t gssw4u 45 $K --fwd-intra-gram-staged-stores on --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform
t cw4 90 $X --fwd-intra-wu-walk 4
t cw2u 90 $X --fwd-intra-wu-walk 2 --fwd-intra-wu-loads uniform --fwd-intra-wu-double-b on
t cw4uc2 90 $X --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform --fwd-intra-wu-chunks 2
t cgss 90 $X --fwd-intra-gram-staged-stores on --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform
t one2 45 $K
t w4u2 45 $K --fwd-intra-wu-walk 4 --fwd-intra-wu-loads uniform
cp $R/*.json $OUT/json/ 2>/dev/null
python3 - > $OUT/summary.txt <<'PY'
import json
for n in ('one','w2','w4','w2u','w4u','w4db','w2udb','w4uc2','w2uc2','uni','gss','gssw4u','cw4','cw2u','cw4uc2','cgss','one2','w4u2'):
    try: k=json.load(open(f'/tmp/kraw2/{n}.json'))
    except Exception as e: print(n, 'no json', e); continue
    for r in k.get('chunked',[]): print(n, r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()}, r.get('check'))
PY
cat $OUT/summary.txt $OUT/times.txt
