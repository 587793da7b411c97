#!/usr/bin/env bash
# NOT YET RUN (written at the end of the sixth session, the device was paused): one sitting that times the
# tensor-core MLA int8 kernel's quarter layout (int8Sgm.queryResident) beside its parity layout and dp4a.
# Usage on the device, from the repository root, with a bundle copied to .device-$1 (scripts/device-prepare.sh):
#   bash bench/results/2026-12-01-h200-sgm2-next-run.sh <name>
# Writes two JSON files and times.txt under $OUT and prints a summary (the transfer has dropped files before).
D=".device-$1"; E="bash $D/enter.sh"; C="$D/app/cli.mjs"
t() { local s=$(date +%s); local n=$1; local lim=$2; shift 2; timeout $lim "$@" > $OUT/$n.json 2> $OUT/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $OUT/$n.err | tail -c 1200 | sed "s/^/  $n: /" >> $OUT/times.txt; }
# 1. parity layout (the default) at 1M and 4K; at 1M every tensor-core variant (INT8_VARIANTS: 16 heads x3,
#    qRegs, the racy diagnostic, the quarter layout with / without prefetch and at 16 heads); at 4K each checked
#    against the dp4a kernel (checks[].vsDp4aKernel.relToMax: 0 expected).
t sgm 90 $E node $C bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576,4096 --int8-kernels subgroup-matrix --sweep-chunks ''
# 2. the quarter layout's rows at every context, beside dp4a's, and its chunk counts at 1M.
t qres 120 $E node $C bench mla --json --unsafe-apis --cache-dtype int8 --context 1048576,131072,4096 --int8-kernels subgroup-matrix,dp4a --int8-sgm queryResident --sweep-chunks 132,264
cat $OUT/times.txt
python3 - <<'PY'
import json, os
O=os.environ['OUT']
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
for n in ('sgm','qres'):
    d=g(n); print(n, 'prepared:', d.get('int8SubgroupMatrix'))
    for r in d.get('decode',[]): print(n, r.get('context'), r.get('kernel'), r.get('int8Sgm'), r.get('ms'), r.get('kernelsMs'), r.get('error'))
    for r in d.get('sweep',[]): print(n, 'sweep', r.get('kernel'), r.get('chunks'), r.get('int8Sgm'), r.get('ms'), r.get('error'))
    for r in d.get('checks',[]): print(n, 'check', r.get('kernel'), r.get('int8Sgm'), (r.get('vsDp4aKernel') or {}).get('relToMax'), r.get('finite'), r.get('error'))
PY
