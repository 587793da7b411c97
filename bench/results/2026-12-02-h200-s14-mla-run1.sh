#!/usr/bin/env bash
# Run as .device-mla/runN.sh: the device tool sends the session's checkout (/work/main), so the bundle and this script
# were copied into its ignored folder .device-mla/ and carried.
# Fourteenth session, mla's first sitting (branch s14-mla): the f16 MLA kernel's candidates at 1M (bench mla
# --int8-variants f16-s14: convert bits / half, ahead 3 / 4, staging-alone and rescale-path diagnostics; each
# variant checked at 4K against int8F16Reference), bounds clamps off (unsafe: how much the clamps cost), then
# bench decode at 1M with the likely winners and a 4K --check (token equality).
E="bash .device-mla/enter.sh"; C=".device-mla/app/cli.mjs"; R=/tmp/r-mla1; rm -rf $R; mkdir -p $R; START=$(date +%s)
$E true >/dev/null 2>&1
t() { if [ $(( $(date +%s) - START )) -gt ${GUARD:-250} ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
U="--unsafe-apis --f16"
M="$E node $C bench mla --json --cache-dtype int8 $U --int8-kernels f16"
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 $U"
t sweep 90 $M --context 4096,1048576 --int8-variants f16-s14
t nr-def 30 $M --context 1048576 --int8-variants none --disable-robustness
t nr-half 30 $M --context 1048576 --int8-variants none --disable-robustness --int8-f16 convert=half
t m-half4 30 $M --context 1048576 --int8-variants none --int8-f16 convert=half,ahead=4
t m-def 30 $M --context 1048576 --int8-variants none
t d-def 40 $D --steps 16 --context 1048576
t d-half 40 $D --steps 16 --context 1048576 --mla-int8-f16 convert=half
t d-bits 40 $D --steps 16 --context 1048576 --mla-int8-f16 convert=bits
t chk-half 60 $D --steps 8 --context 4096 --check --mla-int8-f16 convert=half
t chk-bits 60 $D --steps 8 --context 4096 --check --mla-int8-f16 convert=bits,ahead=4
python3 - > $OUT/summary.txt <<'PY'
import json
O='/tmp/r-mla1'
def g(n):
    try:
        s=open(f'{O}/{n}.json').read(); return json.loads(s[s.index('{'):])
    except Exception as e: return {'loadError': str(e)}
for n in ('d-def','d-half','d-bits','chk-half','chk-bits'):
    d=g(n)
    if 'loadError' in d: print(n, d); continue
    for r in d.get('rows',[]): print(n, r.get('context'), 'tpot', round(r.get('tpotMs',0),3), 'steps', r.get('stepMs'))
    c=d.get('check',{}).get('hybrid')
    if c: print(n, 'check', c.get('tokensEqual'), c.get('logitsMaxRelDiff'), c.get('replayLogitsMaxRelDiff'))
for n in ('sweep','nr-def','nr-half','m-half4','m-def'):
    m=g(n)
    if 'loadError' in m: print(n, m); continue
    for r in m.get('decode',[]): print(n,'row',r.get('context'),r.get('kernel'),r.get('ms'),r.get('trialsMs'),json.dumps(r.get('kernelsMs')),r.get('error',''))
    for r in m.get('sweep',[]): print(n,'sweep',r.get('chunks'),json.dumps(r.get('int8F16')),r.get('ms'),r.get('trialsMs'),json.dumps(r.get('kernelsMs')),r.get('error','')[:300])
    for r in m.get('checks',[]): print(n,'check',r.get('kernel'),r.get('chunks'),json.dumps(r.get('int8F16')),'vsF16Ref',(r.get('vsF16Reference') or {}).get('relToMax'),'vsInt8Ref',(r.get('vsInt8Reference') or {}).get('relToMax'),r.get('finite'))
PY
cat $OUT/summary.txt | cut -c1-600; cat $OUT/times.txt
