/**
 * The Kimi Linear causal LM, full-sequence forward (prefill and training shapes), read top to bottom as
 * KIMI-LINEAR.md states it:
 *
 *   x = embed_tokens[ids]
 *   for each layer: x += mixer(rmsnorm(x, input_layernorm)); x += ffn(rmsnorm(x, post_attention_layernorm))
 *   logits = lm_head(rmsnorm(x, model.norm))
 *
 * mixer is KDA or MLA (NoPE) by the layer map, ffn MoE or a dense SwiGLU MLP. Every op runs on the
 * device of the weights (cpu references or WebGPU kernels) and is recorded into one command stream.
 *
 * This is also the training forward: every op and view goes through the differentiable wrappers of
 * autograd/ops.ts, which record onto a tape only while one is active (model/gradients.ts), so inference
 * and training share this one definition. Keep it that way: a plain kernel call or a Tensor view method
 * on the path from the weights to the output would cut the gradient (the tape rejects such inputs).
 */
import {
  add,
  attention,
  causalConv1d,
  concatLast,
  contiguous,
  embedding,
  expand,
  experts,
  kdaLayer,
  linear,
  narrow,
  reshape,
  rmsnorm,
  rope,
  route,
  select,
  swiglu,
  unsqueeze,
} from '../autograd/ops.js';
import { activeTape } from '../autograd/tape.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { type KimiLinearConfig, isMoeLayer, layerMixer, routerConfig } from './config.js';
import { actRmsStat, expertCountsStat, kdaStats, maxLogitStat } from './stats.js';
import type { ModelWeights } from './weights.js';

/** What a KDA layer carries between calls: state [B, H, d, d] and the q, k, v conv tails [B, W-1, H*d]. */
export interface KdaCarry {
  state: Tensor;
  tails: Tensor[];
}

export interface ForwardResult {
  /** [B, T, V] f32 */
  logits: Tensor;
  /** Per MoE layer: chosen experts [B*T, top_k] i32 (selection order). */
  routes: Map<number, Tensor>;
}

export class KimiLinearModel {
  constructor(
    readonly cfg: KimiLinearConfig,
    readonly weights: ModelWeights,
  ) {}

  w(name: string): Tensor {
    return this.weights.get(name);
  }

  /**
   * Where internal metrics of the next forward go (model/gradients.ts sets it for one forward). They are
   * computed beside the forward, never recorded on a tape; keys as in GradientResult.stats.
   */
  stats?: Map<string, Tensor>;

  /** ids: i32 [B, T]. */
  forward(ids: Tensor): ForwardResult {
    // Everything made inside is disposed when the scope ends, except the logits and the routes.
    return scope(() => {
      const routes = new Map<number, Tensor>();
      const x = this.hidden(ids, { routes });
      return { logits: this.head(x), routes };
    });
  }

  /**
   * The residual stream after the last layer, [B, T, D]. With `checkpoint` and an active tape each
   * layer is a checkpoint (its activations are recomputed in backward instead of kept).
   */
  hidden(ids: Tensor, opts: { routes?: Map<number, Tensor>; checkpoint?: boolean } = {}): Tensor {
    const tape = activeTape();
    let x = this.embed(ids);
    for (let i = 0; i < this.cfg.num_hidden_layers; i++) {
      const mixer =
        layerMixer(this.cfg, i) === 'kda'
          ? (p: string, h: Tensor) => this.kda(p, h).out
          : (p: string, h: Tensor) => this.mla(p, h, false).out;
      const layer = (xi: Tensor) => this.block(i, xi, mixer, opts.routes);
      x = tape && opts.checkpoint ? tape.checkpoint(`layer ${i}`, [x], layer) : layer(x);
      if (this.stats) this.stats.set(`layers.${i}.act_rms`, actRmsStat(x));
    }
    return x;
  }

  /** embed_tokens[ids]: i32 [B, T] -> [B, T, D]. */
  embed(ids: Tensor): Tensor {
    const [B, T] = ids.shape;
    const flat = ids.reshape([B * T]);
    return reshape(embedding(this.w('model.embed_tokens.weight'), flat), [B, T, this.cfg.hidden_size]);
  }

  /**
   * One decoder layer on x [B, T, D]: x += mixer(rmsnorm(x)); x += ffn(rmsnorm(x)). The mixer is the
   * caller's (full-sequence KDA/MLA here, cached decode in Session); MoE routes go to `routes` if given.
   */
  block(i: number, x: Tensor, mixer: (prefix: string, h: Tensor) => Tensor, routes?: Map<number, Tensor>): Tensor {
    const cfg = this.cfg;
    const [B, T, D] = x.shape;
    const p = `model.layers.${i}`;
    const h = rmsnorm(x, this.w(`${p}.input_layernorm.weight`), cfg.rms_norm_eps);
    const y = add(x, mixer(p, h));
    const h2 = rmsnorm(y, this.w(`${p}.post_attention_layernorm.weight`), cfg.rms_norm_eps);
    if (!isMoeLayer(cfg, i)) return add(y, this.mlp(`${p}.mlp`, h2));
    const moe = this.moe(i, reshape(h2, [B * T, D]));
    routes?.set(i, moe.idx);
    return add(y, reshape(moe.y, [B, T, D]));
  }

  /** lm_head(rmsnorm(x, model.norm)): [..., D] -> [..., V]. */
  head(x: Tensor): Tensor {
    const cfg = this.cfg;
    const normed = rmsnorm(x, this.w('model.norm.weight'), cfg.rms_norm_eps);
    return linear(normed, cfg.tie_word_embeddings ? this.w('model.embed_tokens.weight') : this.w('lm_head.weight'));
  }

  /**
   * KDA mixer on h [B, T, D]. With `carry` it continues from (and returns) the recurrent state and the
   * three short-convolution tails, so a prompt can be run in pieces and decoded token by token.
   */
  kda(p: string, h: Tensor, carry?: KdaCarry): { out: Tensor; carry?: KdaCarry } {
    const cfg = this.cfg;
    const { num_heads: H, head_dim: d } = cfg.linear_attn_config!;
    const [B, T] = h.shape;
    const a = `${p}.self_attn`;
    const tails: Tensor[] = [];
    const conv = (name: 'q' | 'k' | 'v', j: number) => {
      const r = causalConv1d(linear(h, this.w(`${a}.${name}_proj.weight`)), this.w(`${a}.${name}_conv1d.weight`), {
        activation: 'silu',
        state: carry?.tails[j],
        returnState: !!carry,
      });
      if (r.state) tails.push(r.state);
      return reshape(r.y, [B, T, H, d]);
    };
    const q = conv('q', 0);
    const k = conv('k', 1);
    const v = conv('v', 2);
    const gRaw = reshape(linear(linear(h, this.w(`${a}.f_a_proj.weight`)), this.w(`${a}.f_b_proj.weight`)), [
      B,
      T,
      H,
      d,
    ]);
    const betaRaw = linear(h, this.w(`${a}.b_proj.weight`));
    const A_log = reshape(this.w(`${a}.A_log`), [H]);
    if (this.stats) kdaStats(this.stats, p.replace(/^model\./, ''), gRaw, betaRaw, A_log, this.w(`${a}.dt_bias`));
    const { o, finalState } = kdaLayer(q, k, v, gRaw, betaRaw, A_log, this.w(`${a}.dt_bias`), {
      outputFinalState: !!carry,
      initialState: carry?.state,
    });
    const gate = reshape(linear(linear(h, this.w(`${a}.g_a_proj.weight`)), this.w(`${a}.g_b_proj.weight`)), [
      B,
      T,
      H,
      d,
    ]);
    const normed = rmsnorm(o, this.w(`${a}.o_norm.weight`), cfg.rms_norm_eps, { gate });
    const out = linear(reshape(normed, [B, T, H * d]), this.w(`${a}.o_proj.weight`));
    return { out, carry: carry ? { state: finalState!, tails } : undefined };
  }

  /** MLA mixer (NoPE, or RoPE when mla_use_nope is false) on h [B, T, D], full causal attention with per-head expanded keys and values. */
  mla(p: string, h: Tensor, wantLatent: boolean): { out: Tensor; latent?: Tensor } {
    const cfg = this.cfg;
    const H = cfg.num_attention_heads;
    const dn = cfg.qk_nope_head_dim!;
    const dr = cfg.qk_rope_head_dim!;
    const dv = cfg.v_head_dim!;
    const r = cfg.kv_lora_rank!;
    const [B, T] = h.shape;
    const a = `${p}.self_attn`;
    const qRaw = reshape(linear(h, this.w(`${a}.q_proj.weight`)), [B, T, H, dn + dr]);
    const ckr = linear(h, this.w(`${a}.kv_a_proj_with_mqa.weight`));
    const c = contiguous(narrow(ckr, 2, 0, r));
    // RoPE variant (mla_use_nope false): q_pe and the shared k_pe rotated at positions 0..T-1 (rope.ts
    // states the convention); NoPE carries the dr part unrotated.
    const rotary = cfg.mla_use_nope === false;
    const kPe0 = unsqueeze(narrow(ckr, 2, r, dr), 2);
    const kPe = rotary ? rope(kPe0, 0, cfg.rope_theta) : kPe0;
    const q = rotary ? concatLast(narrow(qRaw, 3, 0, dn), rope(narrow(qRaw, 3, dn, dr), 0, cfg.rope_theta)) : qRaw;
    const kr = expand(kPe, [B, T, H, dr]);
    // kv_a_layernorm uses eps 1e-6 in the released model, not rms_norm_eps.
    const cNorm = rmsnorm(c, this.w(`${a}.kv_a_layernorm.weight`), 1e-6);
    const kv = reshape(linear(cNorm, this.w(`${a}.kv_b_proj.weight`)), [B, T, H, dn + dv]);
    const k = concatLast(narrow(kv, 3, 0, dn), kr);
    const v = contiguous(narrow(kv, 3, dn, dv));
    const stats = this.stats;
    const onRowMax = stats ? (m: Tensor) => maxLogitStat(stats, p.replace(/^model\./, ''), m) : undefined;
    const o = attention(q, k, v, { causal: true, scale: (dn + dr) ** -0.5, onRowMax });
    // The rows the decode cache keeps per token: the normalised latent and the shared rope key.
    const latent = wantLatent ? concatLast(cNorm, select(kPe, 2, 0)) : undefined;
    return { out: linear(reshape(o, [B, T, H * dv]), this.w(`${a}.o_proj.weight`)), latent };
  }

  /** Sparse MoE on h [N, D]: routed experts plus the shared experts. */
  moe(i: number, h: Tensor): { y: Tensor; idx: Tensor } {
    const cfg = this.cfg;
    const p = `model.layers.${i}.block_sparse_moe`;
    const logits = linear(h, this.w(`${p}.gate.weight`));
    const bias = this.weights.has(`${p}.gate.e_score_correction_bias`)
      ? this.w(`${p}.gate.e_score_correction_bias`)
      : undefined;
    const r = route(logits, bias, routerConfig(cfg));
    const ex = experts(h, r, this.weights.experts.get(i)!);
    if (this.stats) expertCountsStat(this.stats, `layers.${i}`, ex.counts);
    const routed = ex.y;
    const y = cfg.num_shared_experts ? add(routed, this.mlp(`${p}.shared_experts`, h)) : routed;
    return { y, idx: r.idx };
  }

  /** SwiGLU MLP: down(silu(gate(h)) * up(h)). */
  mlp(p: string, h: Tensor): Tensor {
    return linear(
      swiglu(linear(h, this.w(`${p}.gate_proj.weight`)), linear(h, this.w(`${p}.up_proj.weight`))),
      this.w(`${p}.down_proj.weight`),
    );
  }
}

/** Mean next-token cross-entropy over all B*(T-1) positions (host side, f64). */
export function nextTokenLoss(logits: Float32Array, ids: Int32Array, B: number, T: number, V: number): number {
  let total = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) {
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      let max = Number.NEGATIVE_INFINITY;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      total += Math.log(sum) + max - row[ids[b * T + t + 1]];
    }
  }
  return total / (B * (T - 1));
}
