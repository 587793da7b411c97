/**
 * What a config implies, computed by formula: the layer map, parameter counts and cache sizes; and, given
 * a checkpoint, a cross-check of its tensors against the names and shapes the config predicts.
 *
 * Parameters are counted by enumerating the tensors of the released checkpoint layout (names as in
 * KIMI-LINEAR.md), so the count and the cross-check share one source of truth:
 *   KDA:  q/k/v_proj [H*d, D], q/k/v_conv1d [H*d, 1, W], f_a_proj [d, D], f_b_proj [H*d, d],
 *         g_a_proj [d, D], g_b_proj [H*d, d], b_proj [H, D], A_log [1, 1, H, 1], dt_bias [H*d],
 *         o_norm [d], o_proj [D, H*d]
 *   MLA:  q_proj [Hm*(dn+dr), D] (or q_a_proj/q_a_layernorm/q_b_proj when q_lora_rank is set),
 *         kv_a_proj_with_mqa [r+dr, D], kv_a_layernorm [r], kv_b_proj [Hm*(dn+dv), r], o_proj [D, Hm*dv]
 *   MoE:  gate.weight [E, D], gate.e_score_correction_bias [E], experts.e.w1/w3 [I, D], w2 [D, I],
 *         shared_experts.gate/up [I*S, D], down [D, I*S];  dense MLP gate/up [F, D], down [D, F]
 *   every layer: input_layernorm, post_attention_layernorm [D]; model: embed_tokens [V, D], norm [D],
 *   lm_head [V, D] unless tie_word_embeddings.
 * Activated per token: everything except embed_tokens and lm_head, with only num_experts_per_token of the
 * routed experts of each MoE layer (the router and shared experts always run).
 *
 * Cache (per sequence):
 *   MLA: (kv_lora_rank + qk_rope_head_dim) values per token per MLA layer, in the cache dtype.
 *   KDA: per layer, the recurrent state H*d*d in f32 (always f32: it accumulates over the whole sequence)
 *        plus the conv tails, the last W-1 inputs of the q, k and v short convolutions, (W-1)*3*H*d values
 *        in f32 (they are activations the conv kernel reads back as its state; HybridCache keeps them so).
 *        Constant in the sequence length.
 */
import { int8RowWords, type MlaCacheDtype } from '../kernels/mla/int8Layout.js';
import { numel } from '../tensor/shape.js';
import { type KimiLinearConfig, type LayerSpec, layerMap, mlaLatentDim } from './config.js';

export type CacheDType = MlaCacheDtype;

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Which part of the model it belongs to, for the activated count. */
  role: 'embedding' | 'lm_head' | 'expert' | 'other';
  layer?: number;
}

export interface ParamCounts {
  total: number;
  activated: number;
  embedding: number;
  lmHead: number;
  /** Per layer: mixer, ffn (all experts) and norms, and the ffn part that runs per token. */
  layers: { index: number; mixer: number; ffn: number; ffnActivated: number; norms: number }[];
}

export interface CacheSizes {
  dtype: CacheDType;
  mlaLayers: number;
  kdaLayers: number;
  /** (#MLA layers) x (kv_lora_rank + qk_rope_head_dim) x bytes(dtype). */
  mlaBytesPerToken: number;
  /** The same if every layer were MLA. */
  allMlaBytesPerToken: number;
  /** One KDA layer: state H*d*d*4 + conv tails (W-1)*3*H*d*4 (both f32, whatever the cache dtype). */
  kdaStateBytesPerLayer: number;
  kdaConvBytesPerLayer: number;
  /** Every KDA layer together, per sequence, independent of its length. */
  kdaBytesPerSequence: number;
  /** 1 - mla / allMla: the cache saved per token against an all-MLA model. */
  mlaReduction: number;
}

function layerTensors(cfg: KimiLinearConfig, l: LayerSpec): ExpectedTensor[] {
  const D = cfg.hidden_size;
  const p = `model.layers.${l.index}.`;
  const out: ExpectedTensor[] = [];
  const add = (name: string, shape: number[], role: ExpectedTensor['role'] = 'other') =>
    out.push({ name: p + name, shape, role, layer: l.index });
  add('input_layernorm.weight', [D]);
  add('post_attention_layernorm.weight', [D]);
  if (l.mixer === 'kda') {
    const { num_heads: H, head_dim: d, short_conv_kernel_size: W } = cfg.linear_attn_config!;
    for (const x of ['q', 'k', 'v']) {
      add(`self_attn.${x}_proj.weight`, [H * d, D]);
      add(`self_attn.${x}_conv1d.weight`, [H * d, 1, W]);
    }
    add('self_attn.f_a_proj.weight', [d, D]);
    add('self_attn.f_b_proj.weight', [H * d, d]);
    add('self_attn.g_a_proj.weight', [d, D]);
    add('self_attn.g_b_proj.weight', [H * d, d]);
    add('self_attn.b_proj.weight', [H, D]);
    add('self_attn.A_log', [1, 1, H, 1]);
    add('self_attn.dt_bias', [H * d]);
    add('self_attn.o_norm.weight', [d]);
    add('self_attn.o_proj.weight', [D, H * d]);
  } else {
    const H = cfg.num_attention_heads;
    const r = cfg.kv_lora_rank!;
    const dn = cfg.qk_nope_head_dim!;
    const dr = cfg.qk_rope_head_dim!;
    const dv = cfg.v_head_dim!;
    if (cfg.q_lora_rank === null) add('self_attn.q_proj.weight', [H * (dn + dr), D]);
    else {
      add('self_attn.q_a_proj.weight', [cfg.q_lora_rank, D]);
      add('self_attn.q_a_layernorm.weight', [cfg.q_lora_rank]);
      add('self_attn.q_b_proj.weight', [H * (dn + dr), cfg.q_lora_rank]);
    }
    add('self_attn.kv_a_proj_with_mqa.weight', [r + dr, D]);
    add('self_attn.kv_a_layernorm.weight', [r]);
    add('self_attn.kv_b_proj.weight', [H * (dn + dv), r]);
    add('self_attn.o_proj.weight', [D, H * dv]);
  }
  if (l.ffn === 'moe') {
    const E = cfg.num_experts!;
    const I = cfg.moe_intermediate_size!;
    add('block_sparse_moe.gate.weight', [E, D]);
    add('block_sparse_moe.gate.e_score_correction_bias', [E]);
    for (let e = 0; e < E; e++) {
      add(`block_sparse_moe.experts.${e}.w1.weight`, [I, D], 'expert');
      add(`block_sparse_moe.experts.${e}.w2.weight`, [D, I], 'expert');
      add(`block_sparse_moe.experts.${e}.w3.weight`, [I, D], 'expert');
    }
    if (cfg.num_shared_experts > 0) {
      const S = I * cfg.num_shared_experts;
      add('block_sparse_moe.shared_experts.gate_proj.weight', [S, D]);
      add('block_sparse_moe.shared_experts.up_proj.weight', [S, D]);
      add('block_sparse_moe.shared_experts.down_proj.weight', [D, S]);
    }
  } else {
    const F = cfg.intermediate_size;
    add('mlp.gate_proj.weight', [F, D]);
    add('mlp.up_proj.weight', [F, D]);
    add('mlp.down_proj.weight', [D, F]);
  }
  return out;
}

/** Every tensor a checkpoint of this config holds, with its shape (12k+ entries for the 48B model). */
export function expectedTensors(cfg: KimiLinearConfig): ExpectedTensor[] {
  const V = cfg.vocab_size;
  const D = cfg.hidden_size;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [V, D], role: 'embedding' }];
  for (const l of layerMap(cfg)) out.push(...layerTensors(cfg, l));
  out.push({ name: 'model.norm.weight', shape: [D], role: 'other' });
  if (!cfg.tie_word_embeddings) out.push({ name: 'lm_head.weight', shape: [V, D], role: 'lm_head' });
  return out;
}

export function countParameters(cfg: KimiLinearConfig): ParamCounts {
  const layers = layerMap(cfg).map((l) => ({ index: l.index, mixer: 0, ffn: 0, ffnActivated: 0, norms: 0 }));
  let total = 0;
  let embedding = 0;
  let lmHead = 0;
  let other = 0;
  for (const t of expectedTensors(cfg)) {
    const n = numel(t.shape);
    total += n;
    if (t.role === 'embedding') embedding += n;
    else if (t.role === 'lm_head') lmHead += n;
    else if (t.layer === undefined) other += n;
    else {
      const L = layers[t.layer];
      const part = t.name.split('.')[3];
      if (part === 'self_attn') L.mixer += n;
      else if (part === 'input_layernorm' || part === 'post_attention_layernorm') L.norms += n;
      else L.ffn += n;
    }
  }
  let activated = other;
  for (const [i, l] of layerMap(cfg).entries()) {
    const L = layers[i];
    if (l.ffn === 'moe') {
      const I = cfg.moe_intermediate_size!;
      const perExpert = 3 * I * cfg.hidden_size;
      L.ffnActivated = L.ffn - (cfg.num_experts! - cfg.num_experts_per_token!) * perExpert;
    } else L.ffnActivated = L.ffn;
    activated += L.mixer + L.ffnActivated + L.norms;
  }
  return { total, activated, embedding, lmHead, layers };
}

export function cacheSizes(cfg: KimiLinearConfig, dtype: CacheDType = 'bf16'): CacheSizes {
  const layers = layerMap(cfg);
  const mlaLayers = layers.filter((l) => l.mixer === 'mla').length;
  const kdaLayers = layers.length - mlaLayers;
  // An all-MLA model needs the latent sizes even when this config has no MLA layer (then they may be null).
  const latent = mlaLatentDim(cfg);
  const lac = cfg.linear_attn_config;
  const H = lac?.num_heads ?? 0;
  const d = lac?.head_dim ?? 0;
  const W = lac?.short_conv_kernel_size ?? 1;
  const kdaStateBytesPerLayer = H * d * d * 4;
  const kdaConvBytesPerLayer = Math.max(W - 1, 0) * 3 * H * d * 4;
  // int8 rows hold packed codes plus two f32 scales, padded to 16 bytes (int8Layout.ts).
  const rowBytes =
    dtype === 'int8'
      ? latent && 4 * int8RowWords(latent, cfg.kv_lora_rank ?? 0)
      : latent * (dtype === 'bf16' || dtype === 'f16' ? 2 : 4);
  const mlaBytesPerToken = mlaLayers * rowBytes;
  const allMlaBytesPerToken = layers.length * rowBytes;
  return {
    dtype,
    mlaLayers,
    kdaLayers,
    mlaBytesPerToken,
    allMlaBytesPerToken,
    kdaStateBytesPerLayer,
    kdaConvBytesPerLayer,
    kdaBytesPerSequence: kdaLayers * (kdaStateBytesPerLayer + kdaConvBytesPerLayer),
    mlaReduction: allMlaBytesPerToken ? 1 - mlaBytesPerToken / allMlaBytesPerToken : 0,
  };
}

/** What a checkpoint's headers hold, as far as the cross-check needs. */
export interface CheckpointSummary {
  files: string[];
  tensors: { name: string; shape: readonly number[]; dtype: string }[];
}

export interface CheckpointCheck {
  files: string[];
  tensors: number;
  /** Sum of numel over the checkpoint's tensors. */
  params: number;
  /** The config's formula, for comparison. */
  formulaParams: number;
  matches: boolean;
  /** Expected by the config but absent (first 20). */
  missing: string[];
  missingCount: number;
  /** In the checkpoint but not expected (first 20). */
  unexpected: string[];
  unexpectedCount: number;
  /** Present with another shape (first 20). */
  shapeMismatches: { name: string; expected: number[]; found: number[] }[];
  shapeMismatchCount: number;
  dtypes: Record<string, number>;
}

export function checkCheckpoint(cfg: KimiLinearConfig, ckpt: CheckpointSummary): CheckpointCheck {
  const expected = new Map(expectedTensors(cfg).map((t) => [t.name, t.shape]));
  const found = new Map(ckpt.tensors.map((t) => [t.name, t]));
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  const unexpected = [...found.keys()].filter((n) => !expected.has(n));
  const shapeMismatches: CheckpointCheck['shapeMismatches'] = [];
  const dtypes: Record<string, number> = {};
  let params = 0;
  for (const t of ckpt.tensors) {
    params += numel(t.shape);
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    const e = expected.get(t.name);
    if (e && (e.length !== t.shape.length || e.some((v, i) => v !== t.shape[i]))) {
      shapeMismatches.push({ name: t.name, expected: e, found: [...t.shape] });
    }
  }
  const formulaParams = countParameters(cfg).total;
  return {
    files: ckpt.files,
    tensors: ckpt.tensors.length,
    params,
    formulaParams,
    matches: params === formulaParams && !missing.length && !unexpected.length && !shapeMismatches.length,
    missing: missing.slice(0, 20),
    missingCount: missing.length,
    unexpected: unexpected.slice(0, 20),
    unexpectedCount: unexpected.length,
    shapeMismatches: shapeMismatches.slice(0, 20),
    shapeMismatchCount: shapeMismatches.length,
    dtypes,
  };
}

export interface InspectReport {
  config: string;
  layers: LayerSpec[];
  counts: { layers: number; kda: number; mla: number; dense: number; moe: number };
  params: ParamCounts;
  cache: CacheSizes;
  checkpoint?: CheckpointCheck;
}

export function inspectConfig(
  cfg: KimiLinearConfig,
  configName: string,
  opts: { cacheDtype?: CacheDType; checkpoint?: CheckpointSummary } = {},
): InspectReport {
  const layers = layerMap(cfg);
  const kda = layers.filter((l) => l.mixer === 'kda').length;
  const moe = layers.filter((l) => l.ffn === 'moe').length;
  return {
    config: configName,
    layers,
    counts: { layers: layers.length, kda, mla: layers.length - kda, dense: layers.length - moe, moe },
    params: countParameters(cfg),
    cache: cacheSizes(cfg, opts.cacheDtype),
    checkpoint: opts.checkpoint ? checkCheckpoint(cfg, opts.checkpoint) : undefined,
  };
}
