/**
 * modelGradients(model, ids): the mean next-token cross-entropy of a batch and its gradient with
 * respect to every trained parameter, plus the forward's internal metrics, in one command stream
 * (nothing is read back to the host).
 *
 * The forward is KimiLinearModel's own (model/forward.ts) run with a tape active (autograd/tape.ts);
 * the loss is the chunked linear cross-entropy over the B*(T-1) positions that have a next token, so the
 * [N, V] logits never exist. With `checkpointing` each layer keeps only its input and is recomputed in
 * backward (memory: one residual stream per layer instead of every activation).
 */
import { linearCrossEntropy, narrow, rmsnorm, contiguous as contiguousOp, reshape } from '../autograd/ops.js';
import { Tape, withTape } from '../autograd/tape.js';
import { contiguous } from '../kernels/copy/index.js';
import { keep, scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { KimiLinearModel } from './forward.js';
import { ModelWeights, type StackedExperts } from './weights.js';

export interface GradientOptions {
  /** Per-layer activation checkpointing (recompute the layer in backward). */
  checkpointing?: boolean;
}

export interface GradientResult {
  /** f32 [1], mean next-token cross-entropy over all B*(T-1) positions. */
  loss: Tensor;
  /** Same keys/structure as model.weights (experts stacked); no entry for e_score_correction_bias. */
  grads: ModelWeights;
  /**
   * Internal metrics from this forward, f32 unless noted:
   *  `layers.{i}.act_rms` [1] RMS of the residual stream after layer i
   *  `layers.{i}.kda.decay_mean` [1], `layers.{i}.kda.decay_min` [1] (exp(g) over all positions/channels)
   *  `layers.{i}.kda.beta_mean` [1], `layers.{i}.kda.beta_min` [1], `layers.{i}.kda.beta_max` [1]
   *  `layers.{i}.moe.expert_counts` i32 [E] (tokens routed to each expert)
   *  `layers.{i}.mla.max_logit` [H] (largest scaled pre-softmax logit per head, what QK-clip watches)
   */
  stats: Map<string, Tensor>;
}

/** Parameters that gradients do not train (the router's correction bias is nudged by expert load). */
export function isTrainedParameter(name: string): boolean {
  return !name.endsWith('.e_score_correction_bias');
}

export function modelGradients(model: KimiLinearModel, ids: Tensor, opts: GradientOptions = {}): GradientResult {
  const cfg = model.cfg;
  if (ids.dtype !== 'i32' || ids.rank !== 2) throw new Error(`modelGradients: ids ${ids}, expected i32 [B, T]`);
  const [B, T] = ids.shape;
  if (T < 2)
    throw new Error(`modelGradients: ids has T=${T} positions, expected >= 2 (the loss predicts the next token)`);
  const D = cfg.hidden_size;
  const named = [...model.weights.tensors].filter(([n]) => isTrainedParameter(n));
  const stacked = [...model.weights.experts];
  const params = [...named.map(([, t]) => t), ...stacked.flatMap(([, e]) => [e.w1, e.w3, e.w2])];
  const low = [...named, ...stacked.map(([i, e]) => [`model.layers.${i} stacked experts`, e.w1] as const)].find(
    ([, t]) => t.dtype !== 'f32',
  );
  if (low) {
    throw new Error(
      `modelGradients: ${low[0]} is ${low[1].dtype}, expected f32 (train with f32 weights; the MoE and loss backward kernels take f32)`,
    );
  }
  const tape = new Tape({ leaves: params });
  const stats = new Map<string, Tensor>();
  const headWeight = model.w(cfg.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  let loss: Tensor;
  model.stats = stats;
  try {
    loss = scope(() =>
      withTape(tape, () => {
        const x = model.hidden(ids, { checkpoint: opts.checkpointing });
        // Position t predicts ids[t + 1]: the last position of each row has no target and is dropped.
        const xs = reshape(contiguousOp(narrow(x, 1, 0, T - 1)), [B * (T - 1), D]);
        const h = rmsnorm(xs, model.w('model.norm.weight'), cfg.rms_norm_eps);
        const next = ids.narrow(1, 1, T - 1);
        const targets = contiguous(next).reshape([B * (T - 1)]);
        return linearCrossEntropy(h, headWeight, targets);
      }),
    );
  } catch (e) {
    tape.dispose();
    for (const t of stats.values()) t.dispose();
    throw e;
  } finally {
    model.stats = undefined;
  }
  keep(loss);
  const leaves = scope(() => {
    const seed = loss.device.fromHost(new Float32Array([1]), [1]);
    const g = tape.backward(loss, seed);
    seed.dispose();
    return g;
  });
  // Every parameter gets an entry (zeros if the loss does not depend on it, e.g. an unused layer).
  const take = (t: Tensor): Tensor => {
    const g = leaves.get(t.id);
    leaves.delete(t.id);
    return g ?? keep(t.device.zeros(t.shape));
  };
  const tensors = new Map<string, Tensor>(named.map(([n, t]) => [n, take(t)]));
  const experts = new Map<number, StackedExperts>(
    stacked.map(([i, e]) => [i, { w1: take(e.w1), w3: take(e.w3), w2: take(e.w2) }]),
  );
  for (const g of leaves.values()) g.dispose();
  return { loss, grads: new ModelWeights(tensors, experts), stats };
}

/**
 * The gradients under checkpoint names: the named tensors as they are, and each stacked expert tensor
 * split into `model.layers.{i}.block_sparse_moe.experts.{e}.{w1,w2,w3}.weight` views. The views share
 * the stacked storage; the caller disposes the returned tensors (the stacked ones stay the caller's too).
 */
export function gradientsByCheckpointName(grads: ModelWeights): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [n, t] of grads.tensors) out.set(n, t.alias());
  for (const [i, e] of grads.experts) {
    const E = e.w1.shape[0];
    for (let x = 0; x < E; x++) {
      for (const w of ['w1', 'w2', 'w3'] as const) {
        const slot = e[w].select(0, x);
        out.set(`model.layers.${i}.block_sparse_moe.experts.${x}.${w}.weight`, slot);
      }
    }
  }
  return out;
}
