#!/usr/bin/env bash
# Run as .device-mla3/run.sh: the device tool sends the session's checkout (/work/main), so the bundle and this script
# were copied into its ignored folder .device-mla3/ and carried.
# Fifteenth session, mla3's first sitting (branch s15-mla3): rangeIdx (the f16 MLA kernel's block-loop workgroup
# indices in forms Tint's range analysis bounds: no clamps) alone and with convert half / bits, ahead 4, pageAhead,
# its stage diagnostics (bench mla --int8-variants f16-s15, each checked at 4K against int8F16Reference); without
# bounds clamps at all (unsafe, diagnostic: what clamps are left); bench decode at 1M A/B/A/B and 4K --check.
E="bash .device-mla3/enter.sh"; C=".device-mla3/app/cli.mjs"; R=/tmp/r-mla3; rm -rf $R; mkdir -p $R; START=$(date +%s)
$E true >/dev/null 2>&1
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-200} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
M="$E node $C bench mla --json --cache-dtype int8 $U --int8-kernels f16 --sweep-chunks 132"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 $U"
t sweep 90 $M --context 4096,1048576 --int8-variants f16-s15
t d-def 40 $D --steps 16 --context 1048576
t d-ri 40 $D --steps 16 --context 1048576 --mla-int8-f16 rangeIdx
t d-rih 40 $D --steps 16 --context 1048576 --mla-int8-f16 rangeIdx,convert=half
t d-def2 40 $D --steps 16 --context 1048576
t d-ri2 40 $D --steps 16 --context 1048576 --mla-int8-f16 rangeIdx
t d-rih2 40 $D --steps 16 --context 1048576 --mla-int8-f16 rangeIdx,convert=half
t chk-ri 60 $D --steps 8 --context 4096 --check --mla-int8-f16 rangeIdx
t chk-rih 60 $D --steps 8 --context 4096 --check --mla-int8-f16 rangeIdx,convert=half
t sweep-nr 60 $M --context 1048576 --int8-variants f16-s15 --disable-robustness
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r-mla3'
def g(n):
    try:
        s=open(f'{O}/{n}.json').read(); return json.loads(s[s.index('{'):])
    except Exception as e: return {'loadError': str(e)}
for n in ('d-def','d-ri','d-rih','d-def2','d-ri2','d-rih2','chk-ri','chk-rih'):
    d=g(n)
    if 'loadError' in d: print(n, d); continue
    for r in d.get('rows',[]):
        st=sorted(r.get('stepMs') or [0]); print(n, r.get('context'), 'tpot', round(r.get('tpotMs',0),3), 'median', st[len(st)//2], 'steps', r.get('stepMs'))
    c=d.get('check',{}).get('hybrid')
    if c: print(n, 'check', c.get('tokensEqual'), c.get('logitsMaxRelDiff'), c.get('replayLogitsMaxRelDiff'))
for n in ('sweep','sweep-nr'):
    m=g(n)
    if 'loadError' in m: print(n, m); continue
    for r in m.get('decode',[]): print(n,'row',r.get('context'),r.get('kernel'),r.get('ms'),r.get('trialsMs'),json.dumps(r.get('kernelsMs')),r.get('error',''))
    for r in m.get('sweep',[]):
        if r.get('int8F16') is None and r.get('trialsMs') is None: continue
        print(n,'sweep',r.get('chunks'),json.dumps(r.get('int8F16')),r.get('ms'),r.get('trialsMs'),json.dumps(r.get('kernelsMs')),r.get('error','')[:300])
    for r in m.get('checks',[]): print(n,'check',json.dumps(r.get('int8F16')),'vsF16Ref',(r.get('vsF16Reference') or {}).get('relToMax'),'vsInt8Ref',(r.get('vsInt8Reference') or {}).get('relToMax'),r.get('finite'))
PY
cat $OUT/summary.txt | cut -c1-400; cat $OUT/times.txt
