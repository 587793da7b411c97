#!/usr/bin/env bash
# kmoe9's second sitting: the route tail's counting selection and the KDA input projection's norm GEMV at 16 rows a
# workgroup, each against the session's start (router in gate_up, norm GEMVs at 8 rows), in one process (4K, batch 1,
# int8 cache, tensor cores, profiled), with --check of the proposed defaults (route in the projection, count, conv 16).
E="bash .device-kmoe9/enter.sh"; C=".device-kmoe9/app/cli.mjs"
P="--preset kimi-linear-48b-a3b --json --variants hybrid --cache-dtype int8 --unsafe-apis"
SW='[{"label":"base8","routeInNorm":false,"normGemvRows":8},{"label":"new","routeInNorm":true},{"label":"new-count8","routeInNorm":true,"normGemvRows":8},{"label":"new-sort8","routeInNorm":true,"routeTailSelect":"sort","normGemvRows":8},{"label":"fold-c16","routeInNorm":false},{"label":"base8-2","routeInNorm":false,"normGemvRows":8},{"label":"new-2","routeInNorm":true},{"label":"new-count8-2","routeInNorm":true,"normGemvRows":8},{"label":"new-all16","routeInNorm":true,"normGemvRows":16}]'
t0=$(date +%s)
timeout 70 $E node $C bench decode $P --steps 8 --context 4096 --profile --check --route-in-norm on --norm-gemv-conv-rows 16 --sweep "$SW" > $OUT/sweep2.json 2> $OUT/sweep2.err; echo "[sweep2 rc=$? $(( $(date +%s) - t0 )) s]"
tail -n 2 $OUT/sweep2.err
