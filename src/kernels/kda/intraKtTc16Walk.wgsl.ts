/**
 * The tensor-core Kt pre-pass (intraKtTc16.wgsl.ts) walking `chunks` chunk slots a workgroup (IntraWUVariant.chunks
 * with tc16; kdaForwardTuning.tc16KtChunks): the next slot's loads (T, A_qk, k, gc) issued as soon as this slot's
 * operands are staged, so they are in flight during this slot's products and stores (the W | U walk's trick,
 * intraWUWalk.wgsl.ts). For that a slot's operands are staged whole: T^T at 0, A_qk at 4096 (both stride 64), Kd
 * ([64, K], stride K) at 8192 of a16, so that the registers hold only the next slot's loads; with the 64 x 64 f32
 * result tile, 2 (8192 + 64 K) + 16384 bytes: 48 KiB at K = 128 (the H200's limit; not lavapipe's 32 KiB, so CI
 * checks it by emulation only: intraKtTc16Reference.ts emulateIntraKtTc16 with the walk's layout).
 * The same arithmetic as the one-slot kernel (the same scales, products in the same order: equal results). A slot
 * past its sequence (slots are numbered with gaps between sequences) computes on another slot's loads of the
 * workgroup and stores nothing; a workgroup none of whose slots is valid returns at once. Grid [1, ceil(NS /
 * chunks), H].
 * H200 (B=1, H=16, d=128, T=32768, bf16 inputs, bench/results/2026-12-02-h200-ktckt-s2-*): 3.250 / 3.249 ms against the
 * one-slot kernel's 1.895 and the f32 kernel's 0.603: slower still (the next slot's loads held in registers beside
 * this slot's work; 48 KiB a workgroup); --check equal to the one-slot kernel's (state 2.02e-4 from the f32 forward).
 */
import type { IntraWUVariant } from './intraWU.wgsl.js';
import {
  intraKtTc16Fits,
  intraKtTc16Head,
  ktColumnBlocks,
  ktFragmentProducts,
  ktItems,
  maxAbsOf,
  mFragmentProducts,
  stageF16,
} from './intraKtTc16.wgsl.js';

const WG = 256;
const R4 = [0, 1, 2, 3];
/** f16 offsets in a16 of the walk: T^T, A_qk, Kd. */
export const WALK_A = 4096;
export const WALK_KD = 8192;

/** Workgroup memory of the walk in bytes. */
export const intraKtTc16WalkBytes = (K: number): number => 2 * (WALK_KD + 64 * K) + 16384;

export const intraKtTc16WalkFits = (v: IntraWUVariant): boolean =>
  intraKtTc16Fits(v) && (v.chunks ?? 1) > 1 && v.K <= 128;

export function intraKtTc16WalkWgsl(v: IntraWUVariant): string {
  if (!intraKtTc16WalkFits(v)) throw new Error(`kda Kt tc16 walk: K=${v.K} (<= 128), chunks=${v.chunks}`);
  const { K } = v;
  const K4 = K / 4;
  const KT = ktItems(K);
  const C = v.chunks ?? 1;
  const cs = Array.from({ length: C }, (_, c) => c);
  const items = Array.from({ length: KT }, (_, i) => i);
  /** WGSL: slot c's raw loads (no arithmetic on them, so nothing waits for them here). */
  const loads = (c: number) =>
    [
      ...R4.map((m) => `let tt${c}_${m} = Tt[abase${c} + lid + ${m * WG}u];`),
      ...R4.map((m) => `let ax${c}_${m} = Aqk[abase${c} + lid + ${m * WG}u];`),
      ...items.flatMap((i) => [
        `let gl${c}_${i} = gc4(rowLast${c}, kc_${i});`,
        ...R4.map((m) => `let kx${c}_${i}_${m} = k[row${c}_${m} * ${K4}u + kc_${i}];`),
        ...R4.map((m) => `let gx${c}_${i}_${m} = gc4(row${c}_${m}, kc_${i});`),
      ]),
    ].join('\n  ');
  const slot = (c: number) => {
    const kd = (i: number, m: number) => `kd${c}_${i}_${m}`;
    const ktProducts = (i: number) => {
      const CB = ktColumnBlocks(K, i);
      return `${ktFragmentProducts(CB, `${WALK_KD + 64 * i}u + ib * ${16 * K}u + cb * 16u`, `${K}u`)}
  workgroupBarrier();
  ${R4.map(
    (m) =>
      `if (ok${c} && i${m} < L${c} && ${i * 16}u + cg < ${K4}u) { Kt[((t0${c} + i${m}) * H + h) * ${K4}u + ${i * 16}u + cg] = scaleOut(r32v(4u * (lid + ${m * WG}u)), eT${c} + eK${c}); }`,
  ).join('\n  ')}
  workgroupBarrier();`;
    };
    const mProducts = `${mFragmentProducts(WALK_A)}
  workgroupBarrier();
  ${R4.map(
    (m) =>
      `if (ok${c}) { M[abase${c} + lid + ${m * WG}u] = select(vec4<f32>(0.0), scaleOut(r32v(4u * (lid + ${m * WG}u)), eA${c} + eT${c}), cg / 4u <= i${m} / 16u); }`,
  ).join('\n  ')}`;
    return `// Slot ${c}: its operands from its loads (T's unit diagonal added; Kd = k exp(gc_last - gc), 0 past the chunk).
  ${c > 0 ? "workgroupBarrier(); // the previous slot's stores have read r32\n  " : ''}${R4.map((m) => `let td${c}_${m} = tt${c}_${m} + select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<u32>(4u * cg) + vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(i${m}));`).join('\n  ')}
  ${items
    .flatMap((i) =>
      R4.map(
        (m) =>
          `let ${kd(i, m)} = select(vec4<f32>(0.0), bf4(kx${c}_${i}_${m}), i${m} < L${c} && ${i * 16}u + cg < ${K4}u) * exp(gl${c}_${i} - gx${c}_${i}_${m});`,
      ),
    )
    .join('\n  ')}
  r32[lid] = subgroupMax(${maxAbsOf(R4.map((m) => `td${c}_${m}`))});
  r32[${WG}u + lid] = subgroupMax(${maxAbsOf(R4.map((m) => `ax${c}_${m}`))});
  r32[${2 * WG}u + lid] = subgroupMax(${maxAbsOf(items.flatMap((i) => R4.map((m) => kd(i, m))))});
  workgroupBarrier();
  var mT${c} = 0.0;
  var mA${c} = 0.0;
  var mK${c} = 0.0;
  for (var s = 0u; s < ${WG}u; s += sgs) {
    mT${c} = max(mT${c}, r32[s]);
    mA${c} = max(mA${c}, r32[${WG}u + s]);
    mK${c} = max(mK${c}, r32[${2 * WG}u + s]);
  }
  let eT${c} = tileShift(mT${c});
  let eA${c} = tileShift(mA${c});
  let eK${c} = tileShift(mK${c});
  ${stageF16((m) => `td${c}_${m}`, 0, `eT${c}`)}
  ${stageF16((m) => `ax${c}_${m}`, WALK_A, `eA${c}`)}
  ${items
    .flatMap((i) =>
      R4.map(
        (m) =>
          `{ let s = vec4<f16>(ldexp(${kd(i, m)}, vec4<i32>(-eK${c}))); let o = ${WALK_KD}u + i${m} * ${K}u + ${64 * i}u + 4u * cg; a16[o] = s.x; a16[o + 1u] = s.y; a16[o + 2u] = s.z; a16[o + 3u] = s.w; }`,
      ),
    )
    .join('\n  ')}
  workgroupBarrier();
  ${c + 1 < C ? `// Slot ${c + 1}'s loads, in flight during slot ${c}'s products and stores.\n  ${loads(c + 1)}` : ''}
  ${items.map(ktProducts).join('\n  ')}
  ${mProducts}`;
  };
  return /* wgsl */ `${intraKtTc16Head(v, WALK_KD + 64 * K)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_size) sgs: u32) {
  let H = p.H;
  let h = wid.z;
  let s0 = wid.y * ${C}u;
  ${cs.map((c) => `let loc${c} = locate(s0 + ${c}u, p.N);\n  let ok${c} = loc${c}.x == 1u;`).join('\n  ')}
  // A valid slot of the workgroup (none: return), whose loads an invalid slot reuses.
  var anyc = 0u;
  ${cs
    .slice()
    .reverse()
    .map((c) => `if (ok${c}) { anyc = ${c}u; }`)
    .join('\n  ')}
  if (!(${cs.map((c) => `ok${c}`).join(' || ')})) { return; }
  let cg = lid % 16u;
  let sg = lid / sgs;
  let nsg = ${WG}u / sgs;
  ${R4.map((m) => `let i${m} = lid / 16u + ${16 * m}u;`).join('\n  ')}
  ${items.map((i) => `let kc_${i} = min(${i * 16}u + cg, ${K4 - 1}u);`).join('\n  ')}
  ${cs
    .map(
      (c) => `let sl${c} = select(s0 + anyc, s0 + ${c}u, ok${c});
  let lc${c} = locate(sl${c}, p.N);
  let t0${c} = lc${c}.y;
  let L${c} = lc${c}.z;
  let abase${c} = (sl${c} * H + h) * 1024u;
  let rowLast${c} = (t0${c} + L${c} - 1u) * H + h;
  ${R4.map((m) => `let row${c}_${m} = (t0${c} + min(i${m}, L${c} - 1u)) * H + h;`).join('\n  ')}`,
    )
    .join('\n  ')}
  ${loads(0)}
  ${cs.map(slot).join('\n  ')}
}`;
}
