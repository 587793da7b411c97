E="bash .device-attn/enter.sh"; C=".device-attn/app/cli.mjs"
s=$(date +%s); timeout 22 $E node $C bench train --preset train-100m --seq-len 4096 --steps 1 --warmup 0 --json --variants hybrid --attention-check > $OUT/check.json 2> $OUT/check.err; echo "rc=$? $(( $(date +%s) - s )) s"
python3 -c "
import json,os; d=json.load(open(os.environ['OUT']+'/check.json')); print(json.dumps(d.get('attentionCheck'))); print([(r['model'], round(r['stepMs'],1)) for r in d['rows']])"
grep -v Warning $OUT/check.err | tail -5
