#!/usr/bin/env bash
# Lead's sitting 1 (sixth session): kovl's shared pipeline end to end, sgm2's quarter layout, on main (dec8+kovl+sgm2 merged).
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 1200 | sed "s/^/  $n: /" >> $OUT/times.txt; }
K="$E node $C bench kda --json --T 32768 --batch 64 --skip-recompute --profile --skip-backward"
t kda-base 60 $K
t kda-shared 60 $K --fwd-shared-pipeline on
t kda-check 60 $E node $C bench kda --json --T 2048 --batch 1 --skip-recompute --skip-backward --check --fwd-shared-pipeline on
t sgm 90 $E node $C bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576,4096 --int8-kernels subgroup-matrix --sweep-chunks ''
t qres 120 $E node $C bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576,131072,4096 --int8-kernels subgroup-matrix,dp4a --int8-sgm queryResident --sweep-chunks 132,264
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r'
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('kda-base','kda-shared','kda-check'):
    k=g(n)
    for r in k.get('chunked',[]): print(n, r.get('pass'), r.get('T'), round(r.get('ms',0),3), {a: round(b,3) for a,b in (r.get('kernelsMs') or {}).items()}, r.get('check'))
for n in ('sgm','qres'):
    d=g(n); print(n, 'prepared:', d.get('int8SubgroupMatrix'))
    for r in d.get('decode',[]): print(n, r.get('context'), r.get('kernel'), r.get('int8Sgm'), r.get('ms'), r.get('kernelsMs'), r.get('error'))
    for r in d.get('sweep',[]): print(n, 'sweep', r.get('kernel'), r.get('chunks'), r.get('int8Sgm'), r.get('ms'), r.get('error'))
    for r in d.get('checks',[]): print(n, 'check', r.get('kernel'), r.get('int8Sgm'), (r.get('vsDp4aKernel') or {}).get('relToMax'), r.get('finite'), r.get('error'))
PY
tar -C $R -czf $OUT/raw.tgz .
cat $OUT/summary.txt $OUT/times.txt
