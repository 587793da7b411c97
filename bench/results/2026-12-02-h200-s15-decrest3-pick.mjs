// decrest3, fifteenth session: from the 4K profiled sweep (argv[2]) pick the new knobs whose kernel got faster than
// the mean of the base rows by > 1% and > 0.004 ms a step; print the bench decode flags (one line) and, on stderr, why.
import { readFileSync } from 'node:fs';
const j = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ms = (label, kernel) => {
  const xs = j.rows
    .filter((r) => r.sweep === label)
    .map((r) => r.profile?.kernels?.find((k) => k.name === kernel)?.ms)
    .filter((x) => x !== undefined);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
};
const base = (kernel) => {
  const xs = ['base', 'base2', 'base3'].map((l) => ms(l, kernel)).filter((x) => x !== undefined);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};
const wins = (label, kernel) => {
  const b = base(kernel);
  const v = ms(label, kernel);
  const ok = v !== undefined && v < b * 0.99 && b - v > 0.004;
  console.error(`${label} ${kernel}: ${v?.toFixed(4)} against base ${b.toFixed(4)} -> ${ok ? 'pick' : 'no'}`);
  return ok;
};
const gu = wins('stage-gu', 'moe_decode_gate_up');
const dn = wins('stage-dn', 'moe_decode_down_shared');
const flags = [`--moe-stage-x ${gu && dn ? 'both' : gu ? 'gate-up' : dn ? 'down' : 'off'}`];
const lanes = [
  wins('ng64-plain', 'norm_gemv') ? 64 : 32,
  wins('ng64-conv', 'norm_gemv_conv') ? 64 : 32,
  wins('ng64-route', 'norm_gemv_route') ? 64 : 32,
];
flags.push(`--norm-gemv-lanes ${lanes.join(',')}`);
flags.push(`--gated-lanes ${wins('gated64', 'gated_norm_gemv') ? 64 : 32}`);
const rg = wins('gu-r4', 'moe_decode_gate_up') ? 4 : 8;
const rd = wins('dn-r2', 'moe_decode_down_shared') ? 2 : 4;
flags.push(`--moe-rows ${rg},${rd}`);
console.log(flags.join(' '));
