// decrest4 (fifteenth session): `npx tsx bench/results/2026-12-02-s15-decrest4-moe-wgsl-snapshot.mts <checkout root>`. Used to
// check that removing the staged MoE variant left every other MoE decode kernel byte-identical (same output before
// and after: 64,512 variants, 5,376 rejected as invalid by both, total 41959fffaf935562; the 32,256 without
// regSums also equal the pre-decrest3 commit c4515a5).
// Generates the MoE decode kernels' WGSL and keys for a grid of non-staged variants at the default tuning;
// prints one sha256 line per variant and a total.
import { createHash } from 'node:crypto';
const root = process.argv[2];
const m = await import(`${root}/src/kernels/moe/decode.wgsl.ts`);
const { moeDecodeWgsl, moeDecodeKey } = m;
const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
const routes = [undefined, { E: 256, k: 8, hasBias: true }, { E: 64, k: 6, hasBias: false, select: 'merge' }, { E: 256, k: 8, hasBias: true, sg: 32 }, { E: 32, k: 4, hasBias: true, select: 'count' }];
const out: string[] = [];
let n = 0, errs = 0;
for (const mode of ['gateUp', 'down'])
for (const wDtype of ['f32', 'bf16'])
for (const vec of [true, false])
for (const k of [1, 8])
for (const unroll of [undefined, 1, 2, 3])
for (const shared of mode === 'down' ? [undefined, true] : [undefined])
for (const prefetch of mode === 'down' ? [undefined, true] : [undefined])
for (const route of mode === 'gateUp' ? routes : [undefined])
for (const lanes of [undefined, 16, 64, 128])
for (const rows of [undefined, 2, 16])
for (const pair of mode === 'gateUp' ? [undefined, true] : [undefined])
for (const l2 of [undefined, true])
for (const sg of [undefined, 4, 32])
for (const regSums of [undefined, true]) {
  const v: Record<string, unknown> = { mode, wDtype, vec, k };
  for (const [a, b] of Object.entries({ unroll, shared, prefetch, route, lanes, rows, pair, l2, sg, regSums })) if (b !== undefined) v[a] = b;
  let line: string;
  try { line = `${moeDecodeKey(v)} ${h(moeDecodeWgsl(v))}`; } catch (e) { errs++; line = `ERR ${(e as Error).message}`; }
  out.push(`${JSON.stringify(v)} ${line}`);
  n++;
}
console.log(out.join('\n'));
console.error(`variants ${n}, errors ${errs}, total ${h(out.join('\n'))}`);
