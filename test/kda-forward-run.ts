/**
 * The chunked forward as the kernel-variant tests run it: a KdaCase uploaded in the packed [T, H, ...] layout,
 * dispatchChunkForward with keep, and everything it produced read back (o, the final state, every kept
 * intermediate; per-chunk buffers restricted to the chunk slots in use, since the others hold whatever the
 * buffer pool gave); the kernel keys a run dispatched; forward tunings applied for one run. Shared by the tests
 * that compare forward variants (kda-forward-halves, -shared, -shared-output, -kd-in-state); and kdaCore's
 * batched upload (uploadBatched).
 */
import type { DispatchArgs, GpuContext } from '../src/gpu/context.js';
import { dispatchChunkForward, kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import type { KdaInputs } from '../src/kernels/kda/gpu.js';
import { kdaCore } from '../src/kernels/kda/index.js';
import { cuTensor } from '../src/kernels/kda/slots.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import type { Device } from '../src/tensor/tensor.js';
import type { KdaCase } from './kda-random.js';

/** q, k, v, g, beta of case c in the packed layout ([T, H, K], g [T, H] where GK = 1). */
export function uploadPacked(gpu: GpuContext, c: KdaCase): KdaInputs {
  const { T, H, K, V, GK } = c;
  return {
    q: gpu.fromHost(c.q, [T, H, K]),
    k: gpu.fromHost(c.k, [T, H, K]),
    v: gpu.fromHost(c.v, [T, H, V]),
    g: gpu.fromHost(c.g, GK === 1 ? [T, H] : [T, H, K]),
    beta: gpu.fromHost(c.beta, [T, H]),
  };
}

/**
 * q, k, v, g (per channel), beta in kdaCore's batched layout ([1, T, H, K]) on device d, as `dtype` (bf16: the raw
 * bits given). Shared by the tests that call kdaCore on one batch (kda-bf16, -kt-form, -profile, -split; kdaCoreRunner).
 */
export function uploadBatched(
  d: Device,
  x: Record<'q' | 'k' | 'v' | 'g' | 'beta', Float32Array | Uint16Array>,
  { T, H, K, V }: { T: number; H: number; K: number; V: number },
  dtype: 'f32' | 'bf16' = 'f32',
) {
  return {
    q: d.fromHost(x.q, [1, T, H, K], dtype),
    k: d.fromHost(x.k, [1, T, H, K], dtype),
    v: d.fromHost(x.v, [1, T, H, V], dtype),
    g: d.fromHost(x.g, [1, T, H, K], dtype),
    beta: d.fromHost(x.beta, [1, T, H], dtype),
  };
}

/** Chunk slots in use: each sequence's chunks from floor(cu[s] / 64) + s (chunk.wgsl.ts); empty sequences none. */
function usedSlots(cu: readonly number[]): number[] {
  const used: number[] = [];
  for (let s = 0; s + 1 < cu.length; s++) {
    const b = Math.floor(cu[s] / 64) + s;
    for (let j = 0; j * 64 < cu[s + 1] - cu[s]; j++) used.push(b + j);
  }
  return used;
}

export type ForwardTuning = Partial<typeof kdaForwardTuning>;

/** body() with `tuning` set in kdaForwardTuning, its keys removed again afterwards (also on failure). */
export async function withForwardTuning<T>(tuning: ForwardTuning, body: () => Promise<T>): Promise<T> {
  Object.assign(kdaForwardTuning, tuning);
  try {
    return await body();
  } finally {
    for (const key of Object.keys(tuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
  }
}

/** body() with the key (or name) of every kernel it dispatches recorded, in order. */
export async function withDispatchKeys<T>(gpu: GpuContext, body: () => Promise<T>): Promise<T & { keys: string[] }> {
  const keys: string[] = [];
  const dispatch = gpu.dispatch.bind(gpu);
  gpu.dispatch = (args: DispatchArgs) => {
    keys.push(args.kernel.key ?? args.kernel.name);
    dispatch(args);
  };
  try {
    return { ...(await body()), keys };
  } finally {
    gpu.dispatch = dispatch;
  }
}

/**
 * Runs the chunked forward of case c over sequences bounded by cu from initial states S0 ([N, H, K, V]) with the
 * current kdaForwardTuning and reads back o and S (the final state); with `keep` (what a backward needs) also
 * gc, Kd, W, U, Vp, Aqk, T and the per-chunk states of head group i as `h${i}`. Without keep: what inference
 * runs. `groups`: the head groups of the per-chunk states (1 without keep).
 */
export async function runChunkForward(
  gpu: GpuContext,
  c: KdaCase,
  cu: readonly number[],
  S0: Float32Array,
  keep = false,
): Promise<{ got: Record<string, Float32Array>; groups: number }> {
  const { T, H, K, V, GK } = c;
  const N = cu.length - 1;
  const p = { Ttot: T, N, H, K, V, GK, B: 1, T, cuSeqlens: gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32') };
  const x = uploadPacked(gpu, c);
  const state = gpu.fromHost(S0, [N, H, K, V]);
  const o = gpu.empty([T, H, V]);
  const s = dispatchChunkForward(gpu, p, cuTensor(gpu, p), x, state, o, K ** -0.5, keep);
  if (keep && !s) throw new Error('keep: expected the saved intermediates');
  const got: Record<string, Float32Array> = { o: await o.toFloat32(), S: await state.toFloat32() };
  if (s) {
    for (const n of ['gc', 'Kd', 'W', 'U', 'Vp'] as const) got[n] = await s[n].toFloat32();
    const used = usedSlots(cu);
    const pick = (a: Float32Array, per: number) =>
      Float32Array.from(used.flatMap((u) => [...a.subarray(u * per, (u + 1) * per)]));
    for (const n of ['Aqk', 'T'] as const) got[n] = pick(await s[n].toFloat32(), H * 64 * 64);
    for (const [i, h] of s.h.entries()) got[`h${i}`] = pick(await h.toFloat32(), s.groups[i].HB * K * V);
  }
  for (const t of [o, state, x.q, x.k, x.v, x.g, x.beta, p.cuSeqlens]) t.dispose();
  return { got, groups: s ? s.groups.length : 1 };
}

/** runChunkForward with keep: o, S and every kept intermediate. */
export const runChunkForwardKept = (gpu: GpuContext, c: KdaCase, cu: readonly number[], S0: Float32Array) =>
  runChunkForward(gpu, c, cu, S0, true);

/**
 * kdaCore in chunk mode over case c's sequences bounded by cu, from initial states S0 ([N, H, K, V]) or zeros, its
 * inputs uploaded once in the batched layout (bf16: rounded to bf16). run() dispatches it with the current
 * kdaForwardTuning and reads back o, the final state S and the kernel keys; dispose() frees the inputs. Shared by
 * the tests that compare forward options bit for bit (kda-forward-slots, -start).
 */
export function kdaCoreRunner(gpu: GpuContext, c: KdaCase, cu: readonly number[], S0?: Float32Array, bf16 = false) {
  const { H, K, V } = c;
  const N = cu.length - 1;
  const cast = (a: Float32Array) => (bf16 ? f32ArrayToBf16(a) : a);
  const x = uploadBatched(
    gpu,
    { q: cast(c.q), k: cast(c.k), v: cast(c.v), g: cast(c.g), beta: cast(c.beta) },
    c,
    bf16 ? 'bf16' : 'f32',
  );
  const opts = {
    mode: 'chunk' as const,
    cuSeqlens: gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
    initialState: S0 ? gpu.fromHost(S0, [N, H, K, V]) : undefined,
  };
  const run = async () => {
    const r = await withDispatchKeys(gpu, async () => kdaCore(x.q, x.k, x.v, x.g, x.beta, opts));
    const out = {
      o: (await r.o.read()) as Float32Array | Uint16Array,
      S: (await r.finalState!.read()) as Float32Array,
      keys: r.keys,
    };
    for (const t of [r.o, r.finalState]) t?.dispose();
    return out;
  };
  const dispose = () => {
    for (const t of [...Object.values(x), opts.cuSeqlens, opts.initialState]) t?.dispose();
  };
  return { run, dispose };
}
