/**
 * Where a subgroup-matrix load from a workgroup array reads when other workgroup variables are not multiples of 16
 * bytes: the device check of issue #4's cause (the lazy P x V form, decodeInt8SgmLazy.wgsl.ts, 0.72 of max |o| off on
 * the H200 while its emulation was exact). Vulkan wants a cooperative-matrix load's pointer 16-byte aligned; WGSL
 * cannot align a workgroup variable, so where the driver puts one depends on the sizes (and order) of the others.
 *
 * The probe: one subgroup copies 256 words of known bytes into `m`, loads two int8 left fragments [16 rows, 32 bytes]
 * from it (words 0 and 128, rows 8 words apart, as the kernel loads P from `pw`), multiplies each by the two 0/1
 * selection matrices (E_h[k][n] = 1 where k = n + 16 h, so the product is the fragment's columns 16 h .. 16 h + 15,
 * exact in i32) and stores the results; small `pad` variables (u32 words holding marker bytes) are declared before or
 * after `m` per case, written and read back so no compiler drops them. The host compares each loaded byte with m's and
 * finds the byte shift that explains the most of them (0 and every byte matching: the load read where it should).
 * (A helper function precedes the entry point: the stand-ins of int8SgmStub.ts go before the first `fn`.)
 */
import type { GpuContext } from '../../gpu/context.js';
import { type SgmVariant, sgmLoad, sgmStore } from '../int8/subgroupMatrix.wgsl.js';

/** A probe layout: the pad variables declared before and after `m`, in 32-bit words each (1: a scalar u32). */
export interface AlignProbeCase {
  name: string;
  before: number[];
  after: number[];
}

/**
 * The cases: no pad; 1-4 words after `m` (the lazy kernel declared its flag and s_ref array after pw) and 1, 2 before;
 * the lazy kernel's own pair (u32 flag, 16 f32: 68 bytes) and its aligned form (vec4 = 4 words, 16: 80 bytes).
 */
export const ALIGN_PROBE_CASES: AlignProbeCase[] = [
  { name: 'none', before: [], after: [] },
  { name: 'after1', before: [], after: [1] },
  { name: 'after2', before: [], after: [2] },
  { name: 'after3', before: [], after: [3] },
  { name: 'after4', before: [], after: [4] },
  { name: 'before1', before: [1], after: [] },
  { name: 'before2', before: [2], after: [] },
  { name: 'lazyVars', before: [], after: [1, 16] },
  { name: 'lazyVarsAligned', before: [], after: [4, 16] },
];

const WORDS = 256;
/** Byte i of m: distinct enough that a shift by a few bytes matches almost nowhere. */
export const probeByte = (i: number) => ((i * 37 + 11) % 241) - 120;
/** The marker byte of pad variable k (all its bytes): outside probeByte's range [-120, 120]. */
const markerByte = (k: number) => 121 + k;

export function alignProbeWgsl(v: SgmVariant, c: AlignProbeCase): string {
  const u8 = (x: string) => (v.units === 'words' ? x : `(${x}) * 4u`);
  const pads = [...c.before.map((n) => ({ n, at: 'before' })), ...c.after.map((n) => ({ n, at: 'after' }))].map(
    (p, k) => ({ ...p, name: `pad${k}`, marker: `marker(${markerByte(k)}u)` }),
  );
  const decl = (p: (typeof pads)[number]) =>
    `var<workgroup> ${p.name}: ${p.n === 1 ? 'u32' : p.n === 4 ? 'vec4<u32>' : `array<u32, ${p.n}>`};`;
  const word = (p: (typeof pads)[number], i: string) => (p.n === 1 ? p.name : `${p.name}[${i}]`);
  const L: string[] = [];
  L.push('enable chromium_experimental_subgroup_matrix;');
  L.push('@group(0) @binding(1) var<storage, read> src: array<i32>;');
  L.push('@group(0) @binding(2) var<storage, read> eye: array<i32>;');
  L.push('@group(0) @binding(3) var<storage, read_write> dst: array<i32>;');
  for (const p of pads.filter((p) => p.at === 'before')) L.push(decl(p));
  L.push(`var<workgroup> m: array<i32, ${WORDS}>;`);
  for (const p of pads.filter((p) => p.at === 'after')) L.push(decl(p));
  L.push('fn marker(b: u32) -> u32 { return b * 0x01010101u; }');
  L.push('@compute @workgroup_size(32)');
  L.push('fn main(@builtin(local_invocation_index) lid: u32) {');
  for (const p of pads) L.push(`  if (lid < ${p.n}u) { ${word(p, 'lid')} = ${p.marker}; }`);
  L.push(`  for (var i = lid; i < ${WORDS}u; i += 32u) { m[i] = src[i]; }`);
  L.push('  workgroupBarrier();');
  for (let f = 0; f < 2; f++) {
    L.push(
      `  let a${f} = ${sgmLoad(v.syntax, 'subgroup_matrix_left<i8, 32, 16>', '&m', u8(`${128 * f}u`), false, u8('8u'))};`,
    );
    for (let h = 0; h < 2; h++) {
      const e = sgmLoad(v.syntax, 'subgroup_matrix_right<i8, 16, 32>', '&eye', u8(`${128 * h}u`), false, u8('4u'));
      L.push(
        `  ${sgmStore(v.syntax, '&dst', `${256 * (2 * f + h)}u`, `subgroupMatrixMultiply<i32>(a${f}, ${e})`, '16u')};`,
      );
    }
  }
  // The pads read back (their words, summed), so they stay in the module as written.
  const sum = pads.map((p) => (p.n === 1 ? p.name : p.n === 4 ? `${p.name}[lid & 3u]` : `${p.name}[lid % ${p.n}u]`));
  L.push(`  dst[1024u + lid] = bitcast<i32>(${sum.length ? sum.join(' + ') : '0u'});`);
  L.push('}');
  return L.join('\n');
}

/** The probe's inputs: m's 256 words (bytes probeByte(i), little-endian) and the two selection matrices. */
export function alignProbeInputs(): { src: Int32Array; eye: Int32Array } {
  const src = new Int32Array(new Int8Array(Array.from({ length: 4 * WORDS }, (_, i) => probeByte(i))).buffer);
  // E_h: [32 rows k, 16 columns n] row-major, 4 words a row; 1 where k = n + 16 h.
  const eyeBytes = new Int8Array(2 * 32 * 16);
  for (let h = 0; h < 2; h++) for (let n = 0; n < 16; n++) eyeBytes[h * 512 + (n + 16 * h) * 16 + n] = 1;
  return { src, eye: new Int32Array(eyeBytes.buffer) };
}

export interface AlignProbeResult {
  name: string;
  /** Every loaded byte equal to m's at its place. */
  exact: boolean;
  wrong: number;
  /** The byte shift (read at i + shift instead of i) that explains the most loaded bytes, and how many of 1024. */
  shiftBytes: number;
  shiftMatches: number;
  /** Loaded bytes equal to a pad's marker (the load read a pad variable). */
  padBytes: number;
  error?: string;
}

/**
 * dst as the probe leaves it: fragment f (rows 16, at word 128 f of m), half h: result tile (2 f + h), element
 * (r, n) = the fragment's byte (r, n + 16 h), expected m's byte 4 (128 f + 8 r) + n + 16 h.
 */
export function analyseAlignProbe(name: string, dst: Int32Array): AlignProbeResult {
  const got: number[] = [];
  const at: number[] = [];
  for (let f = 0; f < 2; f++)
    for (let h = 0; h < 2; h++)
      for (let r = 0; r < 16; r++)
        for (let n = 0; n < 16; n++) {
          got.push(dst[256 * (2 * f + h) + 16 * r + n]);
          at.push(4 * (128 * f + 8 * r) + n + 16 * h);
        }
  let wrong = 0;
  let padBytes = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== probeByte(at[i])) wrong++;
    if (got[i] >= 121) padBytes++;
  }
  let shiftBytes = 0;
  let shiftMatches = -1;
  for (let s = -64; s <= 64; s++) {
    let k = 0;
    for (let i = 0; i < got.length; i++) {
      const j = at[i] + s;
      if (j >= 0 && j < 4 * WORDS && got[i] === probeByte(j)) k++;
    }
    if (k > shiftMatches) [shiftBytes, shiftMatches] = [s, k];
  }
  return { name, exact: wrong === 0, wrong, shiftBytes, shiftMatches, padBytes };
}

/** Every case on the device (each its own pipeline): one workgroup of 32, read back and analysed. */
export async function runSgmAlignProbe(gpu: GpuContext, v: SgmVariant): Promise<AlignProbeResult[]> {
  const { src, eye } = alignProbeInputs();
  const s = gpu.fromHost(src, [WORDS], 'i32');
  const e = gpu.fromHost(eye, [eye.length], 'i32');
  const out: AlignProbeResult[] = [];
  try {
    for (const c of ALIGN_PROBE_CASES) {
      const code = alignProbeWgsl(v, c);
      const err = await gpu.compileError(code, `sgm_align_probe_${c.name}`);
      if (err) {
        out.push({ name: c.name, exact: false, wrong: -1, shiftBytes: 0, shiftMatches: 0, padBytes: 0, error: err });
        continue;
      }
      const dst = gpu.zeros([1024 + 32], 'i32');
      gpu.dispatch({
        kernel: {
          name: `sgm_align_probe_${c.name}`,
          key: `sgm_align_probe_${c.name}_${v.syntax}_${v.units}`,
          code: () => code,
        },
        tensors: [s, e, dst],
        workgroups: [1],
      });
      out.push(analyseAlignProbe(c.name, (await dst.read()) as Int32Array));
      dst.dispose();
    }
  } finally {
    s.dispose();
    e.dispose();
  }
  return out;
}
