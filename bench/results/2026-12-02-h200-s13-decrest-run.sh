#!/usr/bin/env bash
# decrest, thirteenth session, one sitting: the decode step's subgroup sums (--subgroup-sums) and the router's
# register sort (--subgroup-sort), and the KDA step at 16-column tiles, at 4K (one profiled sweep process with
# --check of both on; then own processes, two repeats each of off / on), then 1M with both on and off.
D=.device-decrest; R=/tmp/r; mkdir -p $R; START=$(date +%s)
bash $D/enter.sh true > $OUT/enter.log 2>&1   # unpacks node and the app once
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
export PATH=/tmp/nodebin:$PATH
echo "[unpacked $(( $(date +%s) - START )) s]" >> $OUT/times.txt
t() { if [ $(( $(date +%s) - START )) -gt $LIMIT ]; then echo "[skipped: time] $1" >> $OUT/times.txt; return; fi; local s=$(date +%s); local n=$1; shift; timeout $1 "${@:2}" > $R/$n.json 2> $R/$n.err; local rc=$?; echo "[$(( $(date +%s) - s )) s rc=$rc] $n" >> $OUT/times.txt; grep -v Warning $R/$n.err | tail -c 400 | sed "s/^/  $n: /" >> $OUT/times.txt; tar -C $R -czf $OUT/raw.tgz .; }
LIMIT=${LIMIT:-112}
B="node $D/app/cli.mjs bench decode --preset kimi-linear-48b-a3b --json --steps 8 --variants hybrid --cache-dtype int8 --unsafe-apis --f16"
ON="--subgroup-sums on --subgroup-sort on"
OFF='"subgroupSums":false,"subgroupSort":false'; BOTH='"subgroupSums":true,"subgroupSort":true'
SW="[{\"label\":\"base\",$OFF},{\"label\":\"sums\",\"subgroupSums\":true,\"subgroupSort\":false},{\"label\":\"sort\",\"subgroupSums\":false,\"subgroupSort\":true},{\"label\":\"both\",$BOTH},{\"label\":\"bv16\",$OFF,\"kdaGated\":\"pf:bv16\"},{\"label\":\"base2\",$OFF},{\"label\":\"both2\",$BOTH},{\"label\":\"sums2\",\"subgroupSums\":true,\"subgroupSort\":false},{\"label\":\"sort2\",\"subgroupSums\":false,\"subgroupSort\":true},{\"label\":\"both-bv16\",$BOTH,\"kdaGated\":\"pf:bv16\"}]"
t sweep 70 $B --context 4096 --profile --check $ON --sweep "$SW"
t on-a 25 $B --context 4096 $ON
t off-a 25 $B --context 4096
t on-b 25 $B --context 4096 $ON
t off-b 25 $B --context 4096
t on-1m 30 $B --context 1048576 $ON
t off-1m 30 $B --context 1048576
t on-1m-prof 30 $B --context 1048576 --profile $ON
echo "[total $(( $(date +%s) - START )) s]" >> $OUT/times.txt
