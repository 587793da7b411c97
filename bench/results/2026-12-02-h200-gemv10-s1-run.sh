#!/usr/bin/env bash
# gemv10's sitting: the L2 prefetch sites at 4K (profiled sweep, two repeats of off / all), the check of the
# prefetch path, then 1M off / all.
D=.device-gemv10; E="bash $D/enter.sh"; C="$D/app/cli.mjs"
P="--preset kimi-linear-48b-a3b --json --steps 8 --variants hybrid --cache-dtype int8 --unsafe-apis"
S='[{"label":"off","l2Prefetch":"off"},{"label":"all","l2Prefetch":"all"},{"label":"oproj","l2Prefetch":"oproj"},{"label":"route","l2Prefetch":"route"},{"label":"down","l2Prefetch":"down"},{"label":"next","l2Prefetch":"next"},{"label":"off2","l2Prefetch":"off"},{"label":"all2","l2Prefetch":"all"},{"label":"all-w264","l2Prefetch":"all","l2PrefetchWgs":264}]'
date +%T
timeout 120 $E node $C bench decode $P --context 4096 --profile --check --l2-prefetch all --sweep "$S" > $OUT/sweep4k.json 2> $OUT/sweep4k.err || echo "sweep4k rc $?"
date +%T
S2='[{"label":"off","l2Prefetch":"off"},{"label":"all","l2Prefetch":"all"},{"label":"off2","l2Prefetch":"off"},{"label":"all2","l2Prefetch":"all"}]'
timeout 80 $E node $C bench decode $P --context 1048576 --sweep "$S2" > $OUT/sweep1m.json 2> $OUT/sweep1m.err || echo "sweep1m rc $?"
date +%T
for f in $OUT/sweep4k.json $OUT/sweep1m.json; do
  node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1]));
if (d.check) console.log("check", JSON.stringify(d.check.hybrid));
for (const r of d.rows) {
  console.log(r.sweep, r.context, "tpot", r.tpotMs?.toFixed(3), "disp", r.dispatchesPerStep);
  if (r.profile) console.log("  ", r.profile.gpuMs, r.profile.kernels.slice(0, 9).map((k) => k.name.replace("moe_decode_", "") + " " + k.ms.toFixed(3)).join(", "));
}' $f 2>&1 | head -30
done
for f in $OUT/*.err; do echo "== $f"; tail -n 3 $f; done
