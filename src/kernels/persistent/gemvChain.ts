/**
 * The GEMV chain on the device (plan: gemvChainPlan.ts, kernels: gemvChain.wgsl.ts, reference: reference.ts): the
 * buffers it needs, its two forms, and reading its last output back.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { gemvChainPersistentWgsl, gemvChainPhaseWgsl } from './gemvChain.wgsl.js';
import { CHAIN_SYNC, CHAIN_WARPS, type GemvChainPlan, gemvChainKey } from './gemvChainPlan.js';
import { epochTag, readTagged } from './gridBarrier.js';

export interface GemvChainBuffers {
  /** bf16 [wWords * 8]: every phase's W [N, K] row-major, back to back. */
  W: Tensor;
  /** f32 [K of phase 0]. */
  X0: Tensor;
  /** Activations: f32 [aLen] for plain data (and the dispatches form), i32 [2 aLen] words for tagged data. */
  A: Tensor;
  /** i32 [CHAIN_SYNC.words], zero when made (persistent form only; the kernel keeps it reset). */
  S: Tensor;
}

/** Zeroed activations and sync words for `pl` (W and X0 are the caller's). */
export function gemvChainScratch(gpu: GpuContext, pl: GemvChainPlan): { A: Tensor; S: Tensor } {
  const tagged = pl.data === 'tagged';
  return {
    A: gpu.zeros([tagged ? 2 * pl.aLen : pl.aLen], tagged ? 'i32' : 'f32'),
    S: gpu.zeros([CHAIN_SYNC.words], 'i32'),
  };
}

function checkBuffers(pl: GemvChainPlan, b: Omit<GemvChainBuffers, 'S'>, persistent: boolean): void {
  if (b.W.dtype !== 'bf16' || b.W.numel !== pl.wWords * 8)
    throw new Error(`gemv chain: W must be bf16 [${pl.wWords * 8}], got ${b.W.dtype} [${b.W.shape}]`);
  if (b.X0.dtype !== 'f32' || b.X0.numel !== pl.phases[0].K)
    throw new Error(`gemv chain: X0 must be f32 [${pl.phases[0].K}], got ${b.X0.dtype} [${b.X0.shape}]`);
  const tagged = persistent && pl.data === 'tagged';
  const want = tagged ? 2 * pl.aLen : pl.aLen;
  if (b.A.numel !== want || b.A.dtype !== (tagged ? 'i32' : 'f32'))
    throw new Error(`gemv chain: A must be ${tagged ? 'i32' : 'f32'} [${want}], got ${b.A.dtype} [${b.A.shape}]`);
}

/** Every phase in one dispatch of pl.G workgroups (grid barriers between phases). */
export function gemvChainPersistent(gpu: GpuContext, pl: GemvChainPlan, b: GemvChainBuffers): void {
  checkBuffers(pl, b, true);
  gpu.dispatch({
    kernel: { name: 'gemv_chain_persistent', key: gemvChainKey(pl), code: () => gemvChainPersistentWgsl(pl) },
    tensors: [b.W, b.X0, b.A, b.S],
    workgroups: [pl.G],
  });
}

/** One dispatch a phase (plain f32 activations). */
export function gemvChainDispatches(gpu: GpuContext, pl: GemvChainPlan, b: Omit<GemvChainBuffers, 'S'>): void {
  checkBuffers(pl, b, false);
  pl.phases.forEach(({ N }, q) => {
    gpu.dispatch({
      kernel: { name: 'gemv_chain_phase', key: gemvChainKey(pl, q), code: () => gemvChainPhaseWgsl(pl, q) },
      tensors: q === 0 ? [b.W, b.X0, b.A] : [b.W, b.A],
      params: new Params().u32(pl.wOff[q], pl.aOff[q], pl.aOff[q + 1], 0),
      workgroups: [Math.ceil(N / CHAIN_WARPS)],
    });
  });
}

export interface ChainOutput {
  /** The last phase's outputs (NaN where a tagged value did not carry the epoch's tag). */
  y: Float32Array;
  /** Values whose tags did not match (tagged data), the sync word's timeouts, the epoch after the run. */
  untagged: number;
  timeouts: number;
  epoch: number;
}

/**
 * The last phase's outputs after a run. `persistent`: read with the tagged words' check (the epoch of the last run
 * is the sync word's epoch - 1) and the sync counters; otherwise plain f32.
 */
export async function readGemvChain(pl: GemvChainPlan, b: GemvChainBuffers, persistent: boolean): Promise<ChainOutput> {
  const last = pl.phases.length - 1;
  const N = pl.phases[last].N;
  const off = pl.aOff[last + 1];
  const sync = persistent ? new Uint32Array((await b.S.read()).buffer) : new Uint32Array(CHAIN_SYNC.words);
  const epoch = sync[CHAIN_SYNC.epoch];
  const y = new Float32Array(N);
  let untagged = 0;
  if (persistent && pl.data === 'tagged') {
    const words = new Uint32Array((await b.A.read()).buffer);
    const tag = epochTag(epoch - 1);
    for (let r = 0; r < N; r++) {
      const v = readTagged(words, off + r, tag);
      if (v === undefined) untagged++;
      y[r] = v ?? Number.NaN;
    }
  } else {
    const a = (await b.A.read()) as Float32Array;
    y.set(a.subarray(off, off + N));
  }
  return { y, untagged, timeouts: sync[CHAIN_SYNC.timeouts], epoch };
}
