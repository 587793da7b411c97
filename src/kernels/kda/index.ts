/**
 * Kimi Delta Attention, the op the KDA layer calls. Two forms:
 *  - core:  kdaCore(q, k, v, g, beta): q, k unit-norm [B, T, H, K], v [B, T, H, V], g log decay
 *           [B, T, H, K] (or [B, T, H] for a scalar gate per head, Gated DeltaNet), beta (0,1) [B, T, H];
 *           o = KDA(q * scale, k, v, g, beta), scale K^-0.5 unless given.
 *  - layer: kdaLayer(q, k, v, g_raw, beta_raw, A_log [H], dt_bias [H*K] (or [H])): applies l2norm to q
 *           and k, the gate -exp(A_log) softplus(g_raw + dt_bias), sigmoid to beta, then the core.
 * State: optional initial state [B, H, K, V] (or [N, ...] with cuSeqlens), final state out.
 * Variable length: `cuSeqlens` (i32 [N+1]) packs N sequences along time in a batch of B = 1; the state
 * resets (to the sequence's initial state, or zero) at every boundary.
 * Backward functions return gradients of sum(o * dO) + sum(S_final * dS) (dS0 only when an initial
 * state was given). On the GPU the backward is always the chunked one; on cpu `mode: 'chunk'` runs the
 * chunked reference, otherwise BPTT.
 * Saved intermediates (training): the GPU backward needs the chunked forward's intermediates. Either the
 * forward keeps them (`saveForBackward: true`: the result's `saved`, handed to the backward as
 * `opts.saved`; the forward then runs chunked at any length under mode 'auto'), or the backward recomputes
 * them (prep + chunked forward again: ~8 ms of kernels at H=16, d=128, T=32768 on an H200; bench kda).
 * Keeping costs memory until the backward: kdaSavedBytes (4 KiB per token and head at d = 128, plus 1 KiB
 * in the layer form: 2.0 GiB per layer at H=16, T=32768). Recompute is the fallback, and what activation
 * checkpointing uses (its first forward runs without a tape, so nothing is kept). A set serves one
 * backward (it takes dA in place); its owner disposes it. Both give the same gradients bit for bit
 * (test/kda-saved.test.ts).
 * Serving: kdaRecurrentSlots runs the fused recurrent kernel on a pool of state slots in place.
 * f32 only. GPU kernels need K and V to be powers of two (or multiples of 32) up to 256.
 *
 * Files: reference.ts (recurrence, chunked form, both backwards), layerReference.ts (l2norm / gate /
 * sigmoid and their chain rule), recurrent.wgsl.ts + slots.ts (fused recurrent kernel), intra.wgsl.ts +
 * chunk.wgsl.ts + output.wgsl.ts + chunk.ts (chunked forward; chunk.ts also splits the per-chunk states
 * into head groups that fit one binding), backward.wgsl.ts + dstateSplit.wgsl.ts + dqkw.wgsl.ts +
 * ut.wgsl.ts + pairs.wgsl.ts + backwardGpu.ts (chunked backward), prep.wgsl.ts + prep.ts (layer transforms
 * on the GPU), gpu.ts (orchestration, the kept set), zeros.ts (zero fill by dispatch).
 */
import { cpu } from '../../tensor/cpuDevice.js';
import { f32ArrayToBf16 } from '../../tensor/dtype.js';
import { castTo } from '../copy/cast.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32, hostI32 } from '../common.js';
import { type GpuSaved, kdaBackwardGpu, kdaForwardGpu, type GpuProblem } from './gpu.js';
import { kdaPrepBackwardReference, kdaPrepReference } from './layerReference.js';
import {
  type KdaDims,
  kdaBackwardReference,
  kdaChunkBackwardReference,
  kdaChunkReference,
  kdaRecurrentReference,
  KDA_CHUNK,
} from './reference.js';
import { kdaRecurrentSlotsGpu } from './slots.js';

export { KDA_CHUNK, type KdaDims } from './reference.js';
export {
  kdaBackwardReference,
  kdaChunkBackwardReference,
  kdaChunkReference,
  kdaRecurrentReference,
} from './reference.js';
export { kdaPrepBackwardReference, kdaPrepReference } from './layerReference.js';

export type KdaMode = 'auto' | 'chunk' | 'recurrent';

export interface KdaOptions {
  /** Multiplies q; default K^-0.5. */
  scale?: number;
  /** [B, H, K, V] (or [N, H, K, V] with cuSeqlens); zero when absent. */
  initialState?: Tensor;
  /** i32 [N+1] offsets of N sequences packed along time (then B must be 1). */
  cuSeqlens?: Tensor;
  /** Return the final state (default true). */
  outputFinalState?: boolean;
  /** Algorithm on the GPU: chunked (prefill, training), recurrent (decode, short prompts); auto by length. */
  mode?: KdaMode;
  /**
   * GPU: keep the chunked forward's intermediates for the backward (KdaResult.saved; see the header). The
   * cpu backend keeps nothing (its backward recomputes), nor does mode 'recurrent'.
   */
  saveForBackward?: boolean;
}

/**
 * The chunked forward's intermediates kept for one backward (from `saveForBackward`). The owner disposes
 * it after the backward (or instead of one); `tensors` lists what it holds (e.g. to exclude from a scope).
 */
export interface KdaSaved {
  readonly tensors: readonly Tensor[];
  /** Device bytes held (kdaSavedBytes of the problem). */
  readonly bytes: number;
  dispose(): void;
}

export interface KdaResult {
  /** [B, T, H, V] */
  o: Tensor;
  /** [B or N, H, K, V] */
  finalState?: Tensor;
  /** With saveForBackward on the GPU (chunked forward): what the backward takes as `opts.saved`. */
  saved?: KdaSaved;
}

export interface KdaBackwardOptions extends KdaOptions {
  /** Gradient of the final state; zero when absent. */
  dS?: Tensor;
  /**
   * The forward's kept intermediates (KdaResult.saved of the same call's forward: same inputs, options and
   * form): the backward starts at its own kernels instead of recomputing the forward. Marked used (a second
   * backward with it throws); still the caller's to dispose.
   */
  saved?: KdaSaved;
}

/**
 * Device bytes a kept set holds for T packed tokens in N sequences, H heads, key/value sizes K, V, gate
 * width GK: gc (T H GK), W and Kd (T H K each), U and V' (T H V each), A_qk and T (64 x 64 per chunk slot
 * and head), the state entering each chunk (K V per chunk slot and head); the layer form adds the
 * normalised q, k (T H K each) and beta (T H). All f32. Chunk slots: floor(T / 64) + N.
 */
export function kdaSavedBytes(
  d: { T: number; N: number; H: number; K: number; V: number; GK: number },
  layer: boolean,
): number {
  const slots = Math.floor(d.T / KDA_CHUNK) + d.N;
  const perToken = d.GK + 2 * d.K + 2 * d.V + (layer ? 2 * d.K + 1 : 0);
  return 4 * d.H * (d.T * perToken + slots * (2 * KDA_CHUNK * KDA_CHUNK + d.K * d.V));
}

/** The kept set behind a public handle (the backward checks that it fits the problem). */
function savedOf(s: KdaSaved | undefined): GpuSaved | undefined {
  return s as GpuSaved | undefined;
}

export interface KdaCoreGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  /** Same shape as g. */
  dg: Tensor;
  dbeta: Tensor;
  /** Present when an initial state was given. */
  dS0?: Tensor;
}

export interface KdaLayerGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  dg_raw: Tensor;
  dbeta_raw: Tensor;
  dA_log: Tensor;
  ddt_bias: Tensor;
  dS0?: Tensor;
}

interface Shape {
  B: number;
  T: number;
  H: number;
  K: number;
  V: number;
  GK: number;
  /** Sequences (B, or the length of cuSeqlens - 1). */
  N: number;
}

function check(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  g: Tensor,
  beta: Tensor,
  o: KdaOptions,
  /** Whether the op takes bf16 inputs too: the forward ops (kdaCore, kdaLayer); the backward and the slots op f32 only. */
  bf16: boolean,
): Shape {
  // f32, or (bf16 ops) bf16 storage (see kdaCore): q, k, v, g share one dtype; beta either.
  const floats = bf16 ? (['f32', 'bf16'] as const) : (['f32'] as const);
  expectDType(op, 'q', q, floats);
  for (const [n, t] of [
    ['k', k],
    ['v', v],
    ['g', g],
  ] as const)
    expectDType(op, `${n} (like q)`, t, [q.dtype]);
  expectDType(op, 'beta', beta, floats);
  if (q.dtype === 'bf16' && o.saveForBackward) {
    throw new TypeError(`${op}: q, k, v, g are bf16, which runs the forward only; saveForBackward needs them in f32`);
  }
  expectShape(op, 'q', q, [null, null, null, null]);
  const [B, T, H, K] = q.shape;
  expectShape(op, 'k', k, [B, T, H, K]);
  expectShape(op, 'v', v, [B, T, H, null]);
  const V = v.shape[3];
  if (g.rank === 3) expectShape(op, 'g (scalar gate per head)', g, [B, T, H]);
  else expectShape(op, 'g', g, [B, T, H, K]);
  const GK = g.rank === 3 ? 1 : K;
  expectShape(op, 'beta', beta, [B, T, H]);
  let N = B;
  if (o.cuSeqlens) {
    expectDType(op, 'cuSeqlens', o.cuSeqlens, ['i32']);
    expectShape(op, 'cuSeqlens', o.cuSeqlens, [null]);
    if (B !== 1) throw new Error(`${op}: cuSeqlens packs sequences along time, so B must be 1 (got B=${B})`);
    N = o.cuSeqlens.shape[0] - 1;
    if (N < 1) throw new Error(`${op}: cuSeqlens needs at least 2 entries, got ${o.cuSeqlens.shape[0]}`);
  }
  if (o.initialState) {
    expectDType(op, 'initialState', o.initialState, ['f32']);
    expectShape(op, 'initialState', o.initialState, [N, H, K, V]);
  }
  return { B, T, H, K, V, GK, N };
}

function hostCu(s: Shape, cuSeqlens?: Tensor): Int32Array {
  if (cuSeqlens) {
    const cu = hostI32(cuSeqlens);
    if (cu[0] !== 0 || cu[s.N] !== s.T) {
      throw new Error(`kda: cuSeqlens must run from 0 to T=${s.T}, got [${cu[0]} .. ${cu[s.N]}]`);
    }
    for (let i = 0; i < s.N; i++) {
      if (cu[i + 1] < cu[i]) throw new Error(`kda: cuSeqlens decreases at ${i}: ${cu[i]} > ${cu[i + 1]}`);
    }
    return cu;
  }
  return Int32Array.from({ length: s.B + 1 }, (_, i) => i * s.T);
}

function dimsOf(s: Shape, cu: Int32Array): KdaDims {
  return { H: s.H, K: s.K, V: s.V, GK: s.GK, cu };
}

function gpuProblem(s: Shape, o: KdaOptions): GpuProblem {
  return { Ttot: s.B * s.T, N: s.N, H: s.H, K: s.K, V: s.V, GK: s.GK, B: s.B, T: s.T, cuSeqlens: o.cuSeqlens };
}

/**
 * The core op: q, k unit-norm, g log decay, beta in (0, 1). q, k, v, g in f32, or all four in bf16 for the forward
 * only (inference): o is then bf16 and the chunked forward stores its intermediates in bf16 as the Triton kernels do
 * (chunk.ts dispatchChunkForward); beta in f32 or bf16 either way.
 */
export function kdaCore(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor, opts: KdaOptions = {}): KdaResult {
  const device = deviceOf('kdaCore', q, k, v, g, beta);
  const s = check('kdaCore', q, k, v, g, beta, opts, true);
  const scale = opts.scale ?? s.K ** -0.5;
  const wantState = opts.outputFinalState ?? true;
  const gpu = asGpu(device);
  if (!gpu) {
    const cu = hostCu(s, opts.cuSeqlens);
    const S0 = opts.initialState ? hostF32(opts.initialState) : undefined;
    const run = opts.mode === 'chunk' ? kdaChunkReference : kdaRecurrentReference;
    const r = run(hostF32(q), hostF32(k), hostF32(v), hostF32(g), hostF32(beta), dimsOf(s, cu), scale, S0);
    const oShape = [s.B, s.T, s.H, s.V];
    return {
      o: q.dtype === 'bf16' ? cpu.fromHost(f32ArrayToBf16(r.o), oShape, 'bf16') : cpu.fromHost(r.o, oShape),
      finalState: wantState ? cpu.fromHost(r.S, [s.N, s.H, s.K, s.V]) : undefined,
    };
  }
  return kdaForwardGpu(gpu, gpuProblem(s, opts), { q, k, v, g, beta }, undefined, {
    scale,
    initialState: opts.initialState,
    wantState,
    mode: opts.mode ?? 'auto',
    save: opts.saveForBackward,
  });
}

function checkLayer(op: string, s: Shape, A_log: Tensor, dt_bias: Tensor): void {
  expectDType(op, 'A_log', A_log, ['f32']);
  expectDType(op, 'dt_bias', dt_bias, ['f32']);
  if (A_log.numel !== s.H) throw new Error(`${op}: A_log has ${A_log.numel} values, expected H=${s.H}`);
  if (dt_bias.numel !== s.H * s.GK) {
    throw new Error(`${op}: dt_bias has ${dt_bias.numel} values, expected H*${s.GK === 1 ? '1' : 'K'}=${s.H * s.GK}`);
  }
}

/** The layer-level op: l2norm(q), l2norm(k), gate from g_raw, sigmoid(beta_raw), then the core. */
export function kdaLayer(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  g_raw: Tensor,
  beta_raw: Tensor,
  A_log: Tensor,
  dt_bias: Tensor,
  opts: KdaOptions = {},
): KdaResult {
  const device = deviceOf('kdaLayer', q, k, v, g_raw, beta_raw, A_log, dt_bias);
  const s = check('kdaLayer', q, k, v, g_raw, beta_raw, opts, true);
  checkLayer('kdaLayer', s, A_log, dt_bias);
  if (q.dtype === 'bf16' || beta_raw.dtype === 'bf16') {
    // The layer's prep (l2norm, gate, sigmoid) reads f32: widen, run, and give o back in q's dtype.
    const w = [q, k, v, g_raw, beta_raw].map((t) => castTo(t, 'f32'));
    try {
      const r = kdaLayer(w[0], w[1], w[2], w[3], w[4], A_log, dt_bias, opts);
      if (q.dtype !== 'bf16') return r;
      const o = castTo(r.o, 'bf16');
      r.o.dispose();
      return { ...r, o };
    } finally {
      for (const t of w) t.dispose();
    }
  }
  const gpu = asGpu(device);
  if (!gpu) {
    const p = kdaPrepReference(
      hostF32(q),
      hostF32(k),
      hostF32(g_raw),
      hostF32(beta_raw),
      hostF32(A_log),
      hostF32(dt_bias),
      { T: s.B * s.T, H: s.H, K: s.K, GK: s.GK },
    );
    const t = [
      cpu.fromHost(p.q, q.shape),
      cpu.fromHost(p.k, k.shape),
      cpu.fromHost(p.g, g_raw.shape),
      cpu.fromHost(p.beta, beta_raw.shape),
    ];
    const r = kdaCore(t[0], t[1], v, t[2], t[3], opts);
    for (const x of t) x.dispose();
    return r;
  }
  return kdaForwardGpu(
    gpu,
    gpuProblem(s, opts),
    { q, k, v, g: g_raw, beta: beta_raw },
    { A_log, dt_bias },
    {
      scale: opts.scale ?? s.K ** -0.5,
      initialState: opts.initialState,
      wantState: opts.outputFinalState ?? true,
      mode: opts.mode ?? 'auto',
      save: opts.saveForBackward,
    },
  );
}

function checkBackward(op: string, s: Shape, dO: Tensor, dS?: Tensor): void {
  expectDType(op, 'dO', dO, ['f32']);
  expectShape(op, 'dO', dO, [s.B, s.T, s.H, s.V]);
  if (dS) {
    expectDType(op, 'dS', dS, ['f32']);
    expectShape(op, 'dS', dS, [s.N, s.H, s.K, s.V]);
  }
}

/** Gradients of the core op. */
export function kdaCoreBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  g: Tensor,
  beta: Tensor,
  dO: Tensor,
  opts: KdaBackwardOptions = {},
): KdaCoreGrads {
  const device = deviceOf('kdaCoreBackward', q, k, v, g, beta, dO);
  const s = check('kdaCoreBackward', q, k, v, g, beta, opts, false);
  checkBackward('kdaCoreBackward', s, dO, opts.dS);
  const scale = opts.scale ?? s.K ** -0.5;
  const gpu = asGpu(device);
  if (!gpu) {
    const cu = hostCu(s, opts.cuSeqlens);
    const run = opts.mode === 'chunk' ? kdaChunkBackwardReference : kdaBackwardReference;
    const r = run(
      hostF32(q),
      hostF32(k),
      hostF32(v),
      hostF32(g),
      hostF32(beta),
      hostF32(dO),
      dimsOf(s, cu),
      scale,
      opts.initialState ? hostF32(opts.initialState) : undefined,
      opts.dS ? hostF32(opts.dS) : undefined,
    );
    return {
      dq: cpu.fromHost(r.dq, q.shape),
      dk: cpu.fromHost(r.dk, k.shape),
      dv: cpu.fromHost(r.dv, v.shape),
      dg: cpu.fromHost(r.dg, g.shape),
      dbeta: cpu.fromHost(r.dbeta, beta.shape),
      dS0: opts.initialState ? cpu.fromHost(r.dS0, [s.N, s.H, s.K, s.V]) : undefined,
    };
  }
  const r = kdaBackwardGpu(gpu, gpuProblem(s, opts), { q, k, v, g, beta }, undefined, dO, {
    scale,
    initialState: opts.initialState,
    dS: opts.dS,
    saved: savedOf(opts.saved),
  });
  return { dq: r.dq, dk: r.dk, dv: r.dv, dg: r.dg, dbeta: r.dbeta, dS0: r.dS0 };
}

/** Gradients of the layer-level op (through l2norm, the gate and the sigmoid). */
export function kdaLayerBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  g_raw: Tensor,
  beta_raw: Tensor,
  A_log: Tensor,
  dt_bias: Tensor,
  dO: Tensor,
  opts: KdaBackwardOptions = {},
): KdaLayerGrads {
  const device = deviceOf('kdaLayerBackward', q, k, v, g_raw, beta_raw, A_log, dt_bias, dO);
  const s = check('kdaLayerBackward', q, k, v, g_raw, beta_raw, opts, false);
  checkLayer('kdaLayerBackward', s, A_log, dt_bias);
  checkBackward('kdaLayerBackward', s, dO, opts.dS);
  const gpu = asGpu(device);
  if (!gpu) {
    const d = { T: s.B * s.T, H: s.H, K: s.K, GK: s.GK };
    const raw = [hostF32(q), hostF32(k), hostF32(g_raw), hostF32(beta_raw), hostF32(A_log), hostF32(dt_bias)] as const;
    const p = kdaPrepReference(...raw, d);
    const t = [
      cpu.fromHost(p.q, q.shape),
      cpu.fromHost(p.k, k.shape),
      cpu.fromHost(p.g, g_raw.shape),
      cpu.fromHost(p.beta, beta_raw.shape),
    ];
    const c = kdaCoreBackward(t[0], t[1], v, t[2], t[3], dO, opts);
    const b = kdaPrepBackwardReference(
      ...raw,
      { dq: hostF32(c.dq), dk: hostF32(c.dk), dg: hostF32(c.dg), dbeta: hostF32(c.dbeta) },
      d,
    );
    const out: KdaLayerGrads = {
      dq: cpu.fromHost(b.dq, q.shape),
      dk: cpu.fromHost(b.dk, k.shape),
      dv: c.dv,
      dg_raw: cpu.fromHost(b.dg_raw, g_raw.shape),
      dbeta_raw: cpu.fromHost(b.dbeta_raw, beta_raw.shape),
      dA_log: cpu.fromHost(b.dA_log, A_log.shape),
      ddt_bias: cpu.fromHost(b.ddt_bias, dt_bias.shape),
      dS0: c.dS0,
    };
    for (const x of [...t, c.dq, c.dk, c.dg, c.dbeta]) x.dispose();
    return out;
  }
  const r = kdaBackwardGpu(gpu, gpuProblem(s, opts), { q, k, v, g: g_raw, beta: beta_raw }, { A_log, dt_bias }, dO, {
    scale: opts.scale ?? s.K ** -0.5,
    initialState: opts.initialState,
    dS: opts.dS,
    saved: savedOf(opts.saved),
  });
  return {
    dq: r.dq,
    dk: r.dk,
    dv: r.dv,
    dg_raw: r.dg,
    dbeta_raw: r.dbeta,
    dA_log: r.dA_log!,
    ddt_bias: r.ddt_bias!,
    dS0: r.dS0,
  };
}

export interface KdaSlotsOptions {
  scale?: number;
  /** i32 [N+1] when the tokens of N sequences are packed along time (B = 1). */
  cuSeqlens?: Tensor;
  /** Layer-level inputs: apply l2norm, the gate and sigmoid in the kernel. */
  layer?: { A_log: Tensor; dt_bias: Tensor };
}

/**
 * The fused recurrent step for decode and short prompts over a pool of state slots, updated in place:
 * sequence n (batch row n, or packed sequence n) reads and writes pool[slots[n]] ([slots, H, K, V] f32).
 * Returns o [B, T, H, V].
 */
export function kdaRecurrentSlots(
  pool: Tensor,
  slots: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  g: Tensor,
  beta: Tensor,
  opts: KdaSlotsOptions = {},
): Tensor {
  const op = 'kdaRecurrentSlots';
  const device = deviceOf(op, pool, slots, q, k, v, g, beta);
  const s = check(op, q, k, v, g, beta, opts, false);
  expectDType(op, 'pool', pool, ['f32']);
  expectShape(op, 'pool', pool, [null, s.H, s.K, s.V]);
  expectDType(op, 'slots', slots, ['i32']);
  expectShape(op, 'slots', slots, [s.N]);
  if (opts.layer) checkLayer(op, s, opts.layer.A_log, opts.layer.dt_bias);
  const scale = opts.scale ?? s.K ** -0.5;
  const gpu = asGpu(device);
  if (!gpu) {
    const slotIdx = hostI32(slots);
    const KV = s.H * s.K * s.V;
    const poolData = hostF32(pool);
    const S0 = new Float32Array(s.N * KV);
    for (let n = 0; n < s.N; n++) S0.set(poolData.subarray(slotIdx[n] * KV, (slotIdx[n] + 1) * KV), n * KV);
    let [qh, kh, gh, bh] = [hostF32(q), hostF32(k), hostF32(g), hostF32(beta)];
    if (opts.layer) {
      const p = kdaPrepReference(qh, kh, gh, bh, hostF32(opts.layer.A_log), hostF32(opts.layer.dt_bias), {
        T: s.B * s.T,
        H: s.H,
        K: s.K,
        GK: s.GK,
      });
      [qh, kh, gh, bh] = [p.q, p.k, p.g, p.beta];
    }
    const cu = hostCu(s, opts.cuSeqlens);
    const r = kdaRecurrentReference(qh, kh, hostF32(v), gh, bh, dimsOf(s, cu), scale, S0);
    for (let n = 0; n < s.N; n++) poolData.set(r.S.subarray(n * KV, (n + 1) * KV), slotIdx[n] * KV);
    return cpu.fromHost(r.o, [s.B, s.T, s.H, s.V]);
  }
  return kdaRecurrentSlotsGpu(gpu, gpuProblem(s, opts), pool, slots, { q, k, v, g, beta }, opts.layer, scale);
}
