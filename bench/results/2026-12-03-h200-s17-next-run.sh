#!/usr/bin/env bash
# NOT RUN (the seventeenth session's device time was spent). For the next session: does the readback pacer take the
# ~0.1 s host stalls out of long runs? 256 dependent steps at 1M, pacer on / off / on / off, each in its own process;
# compare rows[].tpotMs (the mean, stalls included) and max(stepMs), not only the medians. Bundle: bash
# scripts/device-prepare.sh, then copy .device/{app.tar.xz,enter.sh,node.tar.xz,*.deb} to .device-lead/.
E="bash .device-lead/enter.sh"; C=".device-lead/app/cli.mjs"; R=/tmp/rn; rm -rf $R; mkdir -p $R; START=$(date +%s)
LIMIT=${LIMIT:-150}
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
D="$E node $C bench decode --preset kimi-linear-48b-a3b --json --unsafe-apis --f16 --cache-dtype int8 --variants hybrid --steps 256 --context 1048576"
t on-a 40 $D --pace-readback on
t off-a 40 $D --pace-readback off
t on-b 40 $D --pace-readback on
t off-b 40 $D --pace-readback off
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
