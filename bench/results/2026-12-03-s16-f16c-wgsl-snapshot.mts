// f16c (sixteenth session): `npx tsx bench/results/2026-12-03-s16-f16c-wgsl-snapshot.mts <checkout root>`. Checks that
// adding the f16 cache left the int8 path's f16 tensor-core kernel (and the split / tiled kernels' f32 and bf16 forms,
// and the cache writes) byte-identical: run against main (ec6759c) and this branch, the outputs must be equal.
// One sha256 line per variant (key + WGSL) and a total.
import { createHash } from 'node:crypto';
const root = process.argv[2];
const { mlaInt8F16Wgsl } = await import(`${root}/src/kernels/mla/decodeInt8F16.wgsl.ts`);
const { mlaInt8F16WideWgsl } = await import(`${root}/src/kernels/mla/decodeInt8F16Wide.wgsl.ts`);
const { planMlaInt8F16, mlaInt8F16Key } = await import(`${root}/src/kernels/mla/int8F16Plan.ts`);
const { mlaTiledWgsl } = await import(`${root}/src/kernels/mla/decodeTiled.wgsl.ts`);
const { planMlaTiled, mlaTiledKey } = await import(`${root}/src/kernels/mla/tiledPlan.ts`);
const { mlaDecodeWgsl } = await import(`${root}/src/kernels/mla/decode.wgsl.ts`);
const { planMlaDecode, mlaDecodeKey } = await import(`${root}/src/kernels/mla/plan.ts`);
const { cacheWriteWgsl } = await import(`${root}/src/kernels/mla/cacheWrite.wgsl.ts`);
const { normCacheWriteWgsl, normCacheWriteKey } = await import(`${root}/src/kernels/fused/normCacheWrite.wgsl.ts`);
const { int8RowLayout } = await import(`${root}/src/kernels/mla/int8Layout.ts`);
const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
const out: string[] = [];
let n = 0, errs = 0;
const add = (name: string, f: () => string) => {
  let line: string;
  try { line = f(); } catch (e) { errs++; line = `ERR ${(e as Error).message}`; }
  out.push(`${name} ${line}`);
  n++;
};
for (const [H, R, Rv] of [[32, 576, 512], [64, 576, 512], [20, 192, 128], [40, 320, 256]])
for (const stage of [undefined, 'words', 'vec4'])
for (const ahead of [undefined, 1, 3, 4])
for (const convert of [undefined, 'cvt', 'bits'])
for (const extra of [{}, { qFold: true }, { qPerBlock: true }, { pageAhead: true }, { swizzle: true }, { rowSwap: true }, { rangeIdx: false }, { wide: true }, { skip: ['stage'] }, { skip: ['stores'] }, { skip: ['scores', 'softmax', 'pv', 'rescale'] }, { tau: 0 }, { prefetch: false }]) {
  const o: Record<string, unknown> = { H, R, Rv, ...extra };
  if (stage) o.stage = stage;
  if (ahead) o.ahead = ahead;
  if (convert) o.convert = convert;
  add(JSON.stringify(o), () => { const p = planMlaInt8F16(o); return `${mlaInt8F16Key(p)} ${h(p.wide ? mlaInt8F16WideWgsl(p) : mlaInt8F16Wgsl(p))}`; });
}
for (const [H, R, Rv] of [[32, 576, 512], [20, 192, 128], [7, 66, 40]])
for (const cacheDtype of ['f32', 'bf16'])
for (const SG of [8, 16, 32])
for (const extra of [{}, { doubleBuffer: true }, { pipelined: true }, { sHalves: false }, { lateFetch: false }, { vecAligned: false }]) {
  add(`tiled ${JSON.stringify({ H, R, Rv, cacheDtype, SG, ...extra })}`, () => { const p = planMlaTiled({ H, R, Rv, cacheDtype, SG }, 49152, extra); return `${mlaTiledKey(p)} ${h(mlaTiledWgsl(p))}`; });
  add(`split ${JSON.stringify({ H, R, Rv, cacheDtype, SG, ...extra })}`, () => { const p = planMlaDecode({ H, R, Rv, cacheDtype }, 49152); return `${mlaDecodeKey(p)} ${h(mlaDecodeWgsl(p))}`; });
}
for (const R of [576, 192, 66]) for (const d of ['f32', 'bf16']) add(`cacheWrite ${R} ${d}`, () => h(cacheWriteWgsl(R, d)));
for (const w of ['f32', 'bf16']) for (const sg of [undefined, 32])
  for (const pool of [{ dtype: 'f32', R: 576 }, { dtype: 'bf16', R: 576 }, { dtype: 'int8', L: int8RowLayout(576, 512) }])
    add(`norm ${w} ${sg} ${JSON.stringify(pool)}`, () => `${normCacheWriteKey(w, pool, sg)} ${h(normCacheWriteWgsl(w, pool, sg))}`);
console.log(out.join('\n'));
console.error(`variants ${n}, errors ${errs}, total ${h(out.join('\n'))}`);
