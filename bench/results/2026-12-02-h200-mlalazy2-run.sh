#!/usr/bin/env bash
# mlalazy2's one sitting (carry [".device-mlalazy2"]) (copied with pick.mjs into .device-mlalazy2/ as run.sh): the lazy form's device check at 4K (SGM_LAZY_CHECK_VARIANTS with
# lazyDiag), then, only if a real-kernel variant is correct, that variant and the default timed at 1M (twice each).
E="bash .device-mlalazy2/enter.sh"; C=".device-mlalazy2/app/cli.mjs"
M="$E node $C bench mla --json --unsafe-apis --cache-dtype int8 --int8-kernels subgroup-matrix"
timeout 60 $M --sweep-chunks '' --context 4096 --int8-variants sgm-lazy-check > $OUT/chk.json 2> $OUT/chk.err
echo "chk rc=$?"; tail -c 300 $OUT/chk.err
P=$($E node .device-mlalazy2/pick.mjs $OUT/chk.json | tee $OUT/pick.txt | tail -1)
cat $OUT/pick.txt
if [ "$P" != "none" ] && [ -n "$P" ]; then
  for i in 1 2; do
    timeout 20 $M --sweep-chunks '' --context 1048576 --int8-variants none > $OUT/def$i.json 2> $OUT/def$i.err
    timeout 20 $M --sweep-chunks '' --context 1048576 --int8-variants none --int8-sgm "$P" > $OUT/fix$i.json 2> $OUT/fix$i.err
  done
  grep -h '"ms"\|mla_decode_int8_sgm' $OUT/def*.json $OUT/fix*.json | head -20
fi
