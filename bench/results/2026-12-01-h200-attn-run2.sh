E="bash .device-attn/enter.sh"; C=".device-attn/app/cli.mjs"; R=/tmp/r; mkdir -p $R
t() { local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $OUT/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" | tee -a $OUT/times.txt; tail -c 1500 $R/$n.err | grep -v Warning | sed "s/^/$n: /" >> $OUT/errs.txt; }
T="$E node $C bench train --preset train-100m --seq-len 4096 --steps 3 --warmup 1 --json --profile"
t half-prof 90 $T --attention wide-half --attention-check
t tiled-prof 60 $T --attention tiled
t wide-prof 60 $T --attention wide
cat $OUT/errs.txt | head -20
python3 - <<'PY'
import json, os
O=os.environ['OUT']
def g(n):
    try: return json.load(open(f'{O}/{n}.json'))
    except Exception as e: return {}
print('check', json.dumps(g('half-prof').get('attentionCheck')))
for n in ('half-prof','tiled-prof','wide-prof'):
    d=g(n)
    for r in d.get('rows',[]):
        gp=r.get('gradientsProfile',{})
        print(n, r.get('model'), round(r.get('stepMs',0),1), [round(x,1) for x in r.get('stepMsTrials',[])], round(r.get('tflops',0),2), r.get('loss'), r.get('gradNorm'), gp.get('gpuMs'), [(k['name'],k['ms']) for k in gp.get('kernels',[]) if 'attention' in k['name']])
PY
