/**
 * Differentiable wrappers: each has the signature of the kernel (or view method) it wraps, always runs
 * it, and — only while a tape is active (tape.ts) — records a node whose backward calls the op's
 * backward function from the kernel's folder. The model calls ops only through this module, so the
 * inference forward and the training forward are one definition; a new model variant built from these
 * ops gets its gradients for free.
 *
 * Views are wrapped too (reshape, narrow, select, unsqueeze, expand, contiguous): a view is a new Tensor
 * (a new id), and its node maps the gradient back onto the viewed tensor's shape.
 */
import { attention as attentionKernel, attentionBackward, attentionWithStats } from '../kernels/attention/index.js';
import { concatLastBackward } from '../kernels/concat/backward.js';
import { concatLast as concatKernel } from '../kernels/concat/index.js';
import { causalConv1dBackward } from '../kernels/conv1d/backward.js';
import { type Conv1dOptions, type Conv1dResult, causalConv1d as conv1dKernel } from '../kernels/conv1d/index.js';
import { expandBackward, narrowBackward } from '../kernels/copy/backward.js';
import { contiguous as contiguousKernel } from '../kernels/copy/index.js';
import {
  type CrossEntropyOptions,
  type LinearCrossEntropyOptions,
  crossEntropy as crossEntropyKernel,
  linearCrossEntropy as linearCrossEntropyKernel,
} from '../kernels/crossEntropy/index.js';
import { sigmoidMulBackward, siluBackward, sumToTrailing, swigluBackward } from '../kernels/elementwise/backward.js';
import * as ew from '../kernels/elementwise/index.js';
import { embeddingBackward } from '../kernels/embedding/backward.js';
import { embedding as embeddingKernel } from '../kernels/embedding/index.js';
import { type KdaOptions, type KdaResult, kdaLayer as kdaLayerKernel, kdaLayerBackward } from '../kernels/kda/index.js';
import { linearBackward, linearFusedAccumulate } from '../kernels/matmul/backward.js';
import { linear as linearKernel } from '../kernels/matmul/index.js';
import { expertsBackward, routeBackward } from '../kernels/moe/backward.js';
import {
  type ExpertsResult,
  type ExpertWeights,
  experts as expertsKernel,
  type RouterConfig,
  type RoutesT,
  route as routeKernel,
} from '../kernels/moe/index.js';
import { rmsnormBackward } from '../kernels/rmsnorm/backward.js';
import { type RmsnormOptions, rmsnorm as rmsnormKernel } from '../kernels/rmsnorm/index.js';
import { rope as ropeKernel, ropeBackward } from '../kernels/rope/index.js';
import type { Shape } from '../tensor/shape.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { activeTape } from './tape.js';

// ---- views ---------------------------------------------------------------------------------------

/** dy reshaped to `shape` (dy made dense first: gradients of views may arrive as views). */
function reshapeGrad(dy: Tensor, shape: readonly number[]): Tensor {
  const d = contiguousKernel(dy);
  const r = d.reshape([...shape]);
  d.dispose();
  return r;
}

export function reshape(t: Tensor, shape: Shape): Tensor {
  const y = t.reshape(shape);
  const tape = activeTape();
  if (tape) tape.record('reshape', [t], [y], ([dy]) => [reshapeGrad(dy!, t.shape)], []);
  return y;
}

export function unsqueeze(t: Tensor, dim: number): Tensor {
  const y = t.unsqueeze(dim);
  const tape = activeTape();
  if (tape) tape.record('unsqueeze', [t], [y], ([dy]) => [reshapeGrad(dy!, t.shape)], []);
  return y;
}

export function narrow(t: Tensor, dim: number, start: number, length: number): Tensor {
  const y = t.narrow(dim, start, length);
  const tape = activeTape();
  if (tape) tape.record('narrow', [t], [y], ([dy]) => [narrowBackward(dy!, t.shape, dim, start)], []);
  return y;
}

export function select(t: Tensor, dim: number, index: number): Tensor {
  const y = t.select(dim, index);
  const tape = activeTape();
  if (tape) {
    const d = dim < 0 ? dim + t.rank : dim;
    const full = [...t.shape];
    tape.record(
      'select',
      [t],
      [y],
      ([dy]) => {
        const u = reshapeGrad(
          dy!,
          full.map((s, i) => (i === d ? 1 : s)),
        );
        const g = narrowBackward(u, full, d, index);
        u.dispose();
        return [g];
      },
      [],
    );
  }
  return y;
}

export function expand(t: Tensor, shape: Shape): Tensor {
  const y = t.expand(shape);
  const tape = activeTape();
  if (tape) tape.record('expand', [t], [y], ([dy]) => [expandBackward(dy!, t.shape)], []);
  return y;
}

export function contiguous(t: Tensor): Tensor {
  const y = contiguousKernel(t);
  const tape = activeTape();
  if (tape) tape.record('contiguous', [t], [y], ([dy]) => [reshapeGrad(dy!, t.shape)], []);
  return y;
}

export function concatLast(a: Tensor, b: Tensor): Tensor {
  const y = concatKernel(a, b);
  const tape = activeTape();
  if (tape) {
    const A = a.shape[a.rank - 1];
    tape.record(
      'concatLast',
      [a, b],
      [y],
      ([dy]) => {
        const r = concatLastBackward(dy!, A);
        return [r.da, r.db];
      },
      [],
    );
  }
  return y;
}

// ---- dense layers ------------------------------------------------------------------------------

export function linear(x: Tensor, weight: Tensor): Tensor {
  const y = linearKernel(x, weight);
  const tape = activeTape();
  if (tape) {
    const [xs, ws] = [tape.save(x), tape.save(weight)];
    const xid = x.id;
    tape.record(
      'linear',
      [x, weight],
      [y],
      ([dy], t) => {
        // A gradient already held for x (another projection of the same input) is added in dX's matmul
        // epilogue instead of by the tape's separate add (same value).
        const prev = linearFusedAccumulate() ? t.takeGrad(xid) : undefined;
        const r = linearBackward(xs, ws, dy!, undefined, prev);
        prev?.dispose();
        return [r.dx, r.dw];
      },
      [xs, ws],
    );
  }
  return y;
}

export function embedding(table: Tensor, ids: Tensor): Tensor {
  const y = embeddingKernel(table, ids);
  const tape = activeTape();
  if (tape) {
    const is = tape.save(ids);
    const V = table.shape[0];
    tape.record('embedding', [table, ids], [y], ([dy]) => [embeddingBackward(is, dy!, V), undefined], [is]);
  }
  return y;
}

export function rmsnorm(x: Tensor, weight: Tensor, eps: number, opts: RmsnormOptions = {}): Tensor {
  const y = rmsnormKernel(x, weight, eps, opts);
  const tape = activeTape();
  if (tape) {
    const { gate } = opts;
    const saved = [tape.save(x), tape.save(weight), ...(gate ? [tape.save(gate)] : [])];
    tape.record(
      gate ? 'rmsnorm_gated' : 'rmsnorm',
      gate ? [x, weight, gate] : [x, weight],
      [y],
      ([dy]) => {
        const r = rmsnormBackward(saved[0], saved[1], eps, dy!, { gate: saved[2] });
        return gate ? [r.dx, r.dw, r.dgate] : [r.dx, r.dw];
      },
      saved,
    );
  }
  return y;
}

// ---- elementwise -------------------------------------------------------------------------------

export function add(a: Tensor, b: Tensor): Tensor {
  const y = ew.add(a, b);
  const tape = activeTape();
  if (tape) {
    const [sa, sb] = [[...a.shape], [...b.shape]];
    tape.record('add', [a, b], [y], ([dy]) => [sumToTrailing(dy!, sa), sumToTrailing(dy!, sb)], []);
  }
  return y;
}

/** a * b for two tensors of one shape. */
export function mul(a: Tensor, b: Tensor): Tensor {
  if (a.numel !== b.numel) throw new Error(`autograd mul: operands ${a} and ${b} differ in size (no broadcast here)`);
  const y = ew.mul(a, b);
  const tape = activeTape();
  if (tape) {
    const [as, bs] = [tape.save(a), tape.save(b)];
    tape.record('mul', [a, b], [y], ([dy]) => [ew.mul(dy!, bs), ew.mul(dy!, as)], [as, bs]);
  }
  return y;
}

export function scale(x: Tensor, s: number): Tensor {
  const y = ew.scale(x, s);
  const tape = activeTape();
  if (tape) tape.record('scale', [x], [y], ([dy]) => [ew.scale(dy!, s)], []);
  return y;
}

export function silu(x: Tensor): Tensor {
  const y = ew.silu(x);
  const tape = activeTape();
  if (tape) {
    const xs = tape.save(x);
    tape.record('silu', [x], [y], ([dy]) => [siluBackward(xs, dy!)], [xs]);
  }
  return y;
}

export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const y = ew.swiglu(gate, up);
  const tape = activeTape();
  if (tape) {
    const [gs, us] = [tape.save(gate), tape.save(up)];
    tape.record(
      'swiglu',
      [gate, up],
      [y],
      ([dy]) => {
        const r = swigluBackward(gs, us, dy!);
        return [r.dgate, r.dup];
      },
      [gs, us],
    );
  }
  return y;
}

export function sigmoidMul(x: Tensor, g: Tensor): Tensor {
  const y = ew.sigmoidMul(x, g);
  const tape = activeTape();
  if (tape) {
    const [xs, gs] = [tape.save(x), tape.save(g)];
    tape.record(
      'sigmoidMul',
      [x, g],
      [y],
      ([dy]) => {
        const r = sigmoidMulBackward(xs, gs, dy!);
        return [r.dx, r.dg];
      },
      [xs, gs],
    );
  }
  return y;
}

// ---- sequence mixers ---------------------------------------------------------------------------

/** Under a tape only the zero-state form is differentiable (no carried state: training runs whole sequences). */
export function causalConv1d(x: Tensor, weight: Tensor, opts: Conv1dOptions = {}): Conv1dResult {
  const tape = activeTape();
  if (tape && opts.state) throw new Error('autograd causalConv1d: a carried state is not differentiable');
  const r = conv1dKernel(x, weight, opts);
  if (tape) {
    const [xs, ws] = [tape.save(x), tape.save(weight)];
    const activation = opts.activation;
    tape.record(
      'causalConv1d',
      [x, weight],
      [r.y],
      ([dy]) => {
        const g = causalConv1dBackward(xs, ws, dy!, { activation });
        return [g.dx, g.dw];
      },
      [xs, ws],
    );
  }
  return r;
}

/**
 * How the KDA layer's backward gets the chunked forward's intermediates under a tape: kept by the forward
 * (`saveForBackward`, default: no second forward in the backward, for kdaSavedBytes of device memory per
 * layer until its backward runs) or recomputed by the backward (false). Activation checkpointing always
 * recomputes: its first forward runs without a tape, and the replay in backward keeps them only for the
 * one layer being differentiated.
 */
export const kdaAutograd: { saveForBackward: boolean } = { saveForBackward: true };

/** The KDA layer op; under a tape the initial state (if any) gets dS0 and the final state passes dS on. */
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
  const tape = activeTape();
  const saveForBackward = !!tape && (opts.saveForBackward ?? kdaAutograd.saveForBackward);
  const r = kdaLayerKernel(q, k, v, g_raw, beta_raw, A_log, dt_bias, { ...opts, saveForBackward });
  if (tape) {
    const ins = [q, k, v, g_raw, beta_raw, A_log, dt_bias];
    const s = ins.map((t) => tape.save(t));
    const S0 = opts.initialState ? tape.save(opts.initialState) : undefined;
    const cu = opts.cuSeqlens ? tape.save(opts.cuSeqlens) : undefined;
    // The kept intermediates live until this node's backward (the tape disposes them with `saved`).
    const kept = r.saved ? r.saved.tensors.map((t) => keep(t)) : [];
    const saved = r.saved;
    tape.record(
      'kdaLayer',
      S0 ? [...ins, opts.initialState!] : ins,
      r.finalState ? [r.o, r.finalState] : [r.o],
      ([dO, dS]) => {
        const zero = dO ? undefined : s[2].device.zeros(r.o.shape);
        const g = kdaLayerBackward(s[0], s[1], s[2], s[3], s[4], s[5], s[6], dO ?? zero!, {
          scale: opts.scale,
          initialState: S0,
          cuSeqlens: cu,
          dS,
          saved,
        });
        zero?.dispose();
        const out = [g.dq, g.dk, g.dv, g.dg_raw, g.dbeta_raw, g.dA_log, g.ddt_bias];
        return S0 ? [...out, g.dS0] : out;
      },
      [...s, ...(S0 ? [S0] : []), ...(cu ? [cu] : []), ...kept],
    );
  }
  return { o: r.o, finalState: r.finalState };
}

export interface TrainAttentionOptions {
  causal?: boolean;
  scale?: number;
  /** Receives [B, H, T], the largest scaled logit of each query row (QK-clip); the callee owns it. */
  onRowMax?: (rowMax: Tensor) => void;
}

/**
 * Softmax attention. Under a tape (or when row maxima are wanted) it runs the training forward, which
 * also returns the logsumexp the flash-style backward needs, so no T x T matrix is kept.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: TrainAttentionOptions = {}): Tensor {
  const tape = activeTape();
  const aopts = { causal: opts.causal, scale: opts.scale };
  if (!tape && !opts.onRowMax) return attentionKernel(q, k, v, aopts);
  const r = attentionWithStats(q, k, v, aopts);
  if (opts.onRowMax) opts.onRowMax(r.rowMax);
  else r.rowMax.dispose();
  if (!tape) {
    r.lse.dispose();
    return r.o;
  }
  const s = [tape.save(q), tape.save(k), tape.save(v), tape.save(r.o), keep(r.lse)];
  tape.record(
    'attention',
    [q, k, v],
    [r.o],
    ([dO]) => {
      const g = attentionBackward(s[0], s[1], s[2], s[3], s[4], dO!, aopts);
      return [g.dq, g.dk, g.dv];
    },
    s,
  );
  return r.o;
}

export function rope(x: Tensor, positions: Tensor | number, theta: number): Tensor {
  const y = ropeKernel(x, positions, theta);
  const tape = activeTape();
  if (tape) {
    const pos = typeof positions === 'number' ? positions : tape.save(positions);
    const ins = typeof positions === 'number' ? [x] : [x, positions];
    tape.record(
      'rope',
      ins,
      [y],
      ([dy]) => {
        const dx = ropeBackward(dy!, pos, theta);
        return typeof pos === 'number' ? [dx] : [dx, undefined];
      },
      typeof pos === 'number' ? [] : [pos],
    );
  }
  return y;
}

// ---- mixture of experts ------------------------------------------------------------------------

/** Router: the gradient flows through the mixing weights, not the discrete choice nor the bias. */
export function route(logits: Tensor, bias: Tensor | undefined, cfg: RouterConfig): RoutesT {
  const r = routeKernel(logits, bias, cfg);
  const tape = activeTape();
  if (tape) {
    const [ls, idx] = [tape.save(logits), tape.save(r.idx)];
    const bs = bias ? tape.save(bias) : undefined;
    const ws = tape.save(r.weights);
    tape.record('route', [logits], [r.weights], ([dW]) => [routeBackward(ls, bs, { idx, weights: ws }, dW!, cfg)], [
      ls,
      idx,
      ws,
      ...(bs ? [bs] : []),
    ]);
  }
  return r;
}

export function experts(x: Tensor, routes: RoutesT, w: ExpertWeights): ExpertsResult {
  const r = expertsKernel(x, routes, w);
  const tape = activeTape();
  if (tape) {
    const s = [x, routes.idx, routes.weights, w.w1, w.w3, w.w2].map((t) => tape.save(t));
    tape.record(
      'experts',
      [x, routes.weights, w.w1, w.w3, w.w2],
      [r.y],
      ([dy]) => {
        const g = expertsBackward(s[0], { idx: s[1], weights: s[2] }, { w1: s[3], w3: s[4], w2: s[5] }, dy!);
        return [g.dx, g.dWeights, g.dw1, g.dw3, g.dw2];
      },
      s,
    );
  }
  return r;
}

// ---- losses ------------------------------------------------------------------------------------

/** g * s for a [1] device scalar s (the incoming gradient of a loss), without reading it back. */
function timesScalar(g: Tensor, s: Tensor): Tensor {
  const last = g.shape[g.rank - 1];
  const e = s.reshape([1]).expand([last]);
  const dense = contiguousKernel(e);
  const out = ew.mul(g, dense);
  e.dispose();
  dense.dispose();
  return out;
}

/**
 * Mean cross-entropy of logits [N, V] against targets; returns the loss [1]. The kernel computes the
 * gradient in the same pass; it is kept for backward only under a tape.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const r = crossEntropyKernel(logits, targets, opts);
  const tape = activeTape();
  if (!tape) {
    r.dLogits.dispose();
    return r.loss;
  }
  const dl = keep(r.dLogits);
  tape.record('crossEntropy', [logits, targets], [r.loss], ([g]) => [timesScalar(dl, g!), undefined], [dl]);
  return r.loss;
}

/** linear(h, weight) then crossEntropy, chunked so the [N, V] logits never exist; returns the loss [1]. */
export function linearCrossEntropy(
  h: Tensor,
  weight: Tensor,
  targets: Tensor,
  opts: LinearCrossEntropyOptions = {},
): Tensor {
  const r = linearCrossEntropyKernel(h, weight, targets, opts);
  const tape = activeTape();
  if (!tape) {
    r.dh.dispose();
    r.dWeight.dispose();
    return r.loss;
  }
  const [dh, dW] = [keep(r.dh), keep(r.dWeight)];
  tape.record(
    'linearCrossEntropy',
    [h, weight, targets],
    [r.loss],
    ([g]) => [timesScalar(dh, g!), timesScalar(dW, g!), undefined],
    [dh, dW],
  );
  return r.loss;
}
