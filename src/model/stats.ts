/**
 * Internal metrics taken beside a training forward (model/gradients.ts), the ones the training
 * routine watches: activation scale per layer, KDA decay and beta ranges, MoE expert load, MLA max
 * logits (QK-clip). Each is a small device tensor made with plain kernels (never on a tape) and kept
 * out of the forward's scope; nothing is read back here.
 */
import { contiguous } from '../kernels/copy/index.js';
import { defineElementwise, elementwise, mul, neg, sigmoid } from '../kernels/elementwise/index.js';
import { softplus as softplusRef } from '../kernels/elementwise/reference.js';
import { reduce } from '../kernels/reduce/index.js';
import { keep, scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

const SQRT = defineElementwise({ name: 'sqrt', arity: 1, wgsl: 'sqrt(a)', ref: (a) => Math.sqrt(a) });

/** exp(g) for KDA's log decay g = -exp(A_log) * softplus(g_raw + dt_bias): a = g_raw, b = A_log, c = dt_bias. */
const KDA_DECAY = defineElementwise({
  name: 'kdaDecay',
  arity: 3,
  wgsl: 'exp(-exp(b) * softplus(a + c))',
  ref: (a, b, c) => Math.exp(-Math.exp(b) * softplusRef(a + c)),
});

/**
 * Reduce every element to [1], in two passes: rows of w elements (w the divisor of n nearest sqrt(n))
 * reduced in parallel, then those row results. One pass over a single row of n elements runs on one
 * workgroup: on the H200 these statistics took 73 of 340 ms of a 100M-model training step that way.
 * Rows of equal length keep the mean of means exact.
 */
function all(x: Tensor, op: 'mean' | 'max'): Tensor {
  const n = x.numel;
  let w = Math.floor(Math.sqrt(n));
  while (w > 1 && n % w !== 0) w--;
  const d = contiguous(x);
  if (w < 64) {
    const r = reduce(d.reshape([1, n]), op);
    d.dispose();
    return r;
  }
  const rows = reduce(d.reshape([n / w, w]), op);
  d.dispose();
  const r = reduce(rows.reshape([1, n / w]), op);
  rows.dispose();
  return r;
}

const min = (x: Tensor): Tensor => neg(all(neg(x), 'max'));

function put(stats: Map<string, Tensor>, key: string, t: Tensor): void {
  stats.get(key)?.dispose();
  stats.set(key, keep(t));
}

/** sqrt(mean(x^2)) over every element, [1]. */
export function actRmsStat(x: Tensor): Tensor {
  return keep(scope(() => elementwise(SQRT, [all(mul(x, x), 'mean')])));
}

/** decay = exp(g) and beta = sigmoid(beta_raw): mean and min (beta also max) over positions and channels. */
export function kdaStats(
  stats: Map<string, Tensor>,
  prefix: string,
  gRaw: Tensor,
  betaRaw: Tensor,
  A_log: Tensor,
  dt_bias: Tensor,
): void {
  const [, , H, d] = gRaw.shape;
  const out = scope(() => {
    // A_log per head, repeated over its d channels: a trailing-dims [H, d] operand like dt_bias.
    const a = contiguous(A_log.reshape([H, 1]).expand([H, d]));
    const decay = elementwise(KDA_DECAY, [gRaw, a, dt_bias.reshape([H, d])]);
    const beta = sigmoid(betaRaw);
    return {
      decay_mean: all(decay, 'mean'),
      decay_min: min(decay),
      beta_mean: all(beta, 'mean'),
      beta_min: min(beta),
      beta_max: all(beta, 'max'),
    };
  });
  for (const [k, t] of Object.entries(out)) put(stats, `${prefix}.kda.${k}`, t);
}

export function expertCountsStat(stats: Map<string, Tensor>, prefix: string, counts: Tensor): void {
  put(stats, `${prefix}.moe.expert_counts`, counts.alias());
}

/** rowMax [B, H, T] -> the largest scaled logit per head, [H]. Takes ownership of rowMax. */
export function maxLogitStat(stats: Map<string, Tensor>, prefix: string, rowMax: Tensor): void {
  const [B, H, T] = rowMax.shape;
  const m = scope(() => {
    const perHead = contiguous(rowMax.transpose(0, 1));
    return reduce(perHead.reshape([H, B * T]), 'max');
  });
  rowMax.dispose();
  put(stats, `${prefix}.mla.max_logit`, m);
}
