#!/usr/bin/env bash
# kmoe9's sitting (ninth session): the MoE router at the end of the packed projection (routeInNorm) against the
# router folded into gate_up, at batch 1, 48B preset, int8 cache, tensor cores. Run by `run` from the repo root
# with carry [".device-kmoe9"]; every bench in its own process, each guarded.
E="bash .device-kmoe9/enter.sh"; C=".device-kmoe9/app/cli.mjs"
P="--preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 --unsafe-apis"
SW='[{"label":"old","routeInNorm":false},{"label":"new","routeInNorm":true},{"label":"new-pair","routeInNorm":true,"moePairGateUp":true},{"label":"new-u2","routeInNorm":true,"moeUnrollGateUp":2},{"label":"new-l64","routeInNorm":true,"moeLanes":[64,64]},{"label":"new-l64-pair","routeInNorm":true,"moeLanes":[64,64],"moePairGateUp":true},{"label":"new-r16","routeInNorm":true,"moeRows":[16,4]},{"label":"new-merge","routeInNorm":true,"moeRouteSelect":"merge"},{"label":"new-ng16","routeInNorm":true,"normGemvRows":16},{"label":"old2","routeInNorm":false},{"label":"new2","routeInNorm":true}]'
t0=$(date +%s)
timeout 110 $E node $C bench decode $P --steps 8 --context 4096 --profile --sweep "$SW" > $OUT/sweep.json 2> $OUT/sweep.err; echo "[sweep rc=$? $(( $(date +%s) - t0 )) s]"
timeout 80 $E node $C bench decode $P --steps 8 --context 4096,1048576 --check --profile --route-in-norm on > $OUT/new.json 2> $OUT/new.err; echo "[new rc=$? $(( $(date +%s) - t0 )) s]"
timeout 60 $E node $C bench decode $P --steps 8 --context 4096,1048576 --profile --route-in-norm off > $OUT/old.json 2> $OUT/old.err; echo "[old rc=$? $(( $(date +%s) - t0 )) s]"
grep -ho '"tpotMs":[0-9.]*' $OUT/*.json | head -30
tail -2 $OUT/*.err
