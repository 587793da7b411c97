/**
 * The `kimi_linear` config.json, validated with zod. Defaults are those of the released
 * configuration_kimi.py (moonshotai/Kimi-Linear-48B-A3B-Instruct), so a config that omits a field means
 * what it means there; fields that code defaults to null but a layer needs (the MLA sizes when there are
 * MLA layers, the expert sizes when num_experts is set) are checked after parsing. Layer kinds:
 *   layer i (0-based) is KDA when i+1 is in linear_attn_config.kda_layers, MLA when i+1 is in
 *   full_attn_layers (a layer in neither or both is an error); with no linear_attn_config every layer is
 *   MLA, as in the released code. Its ffn is MoE when num_experts is set and i >= first_k_dense_replace
 *   and i % moe_layer_freq == 0, otherwise a dense SwiGLU MLP.
 * Unknown fields are kept (auto_map, transformers_version, ...).
 */
import type { RouterConfig } from '../kernels/moe/index.js';
import { type core, z } from 'zod';

const int = () => z.number().int();
const positive = () => int().positive();
const nonNegative = () => int().nonnegative();

const LinearAttnConfig = z.looseObject({
  kda_layers: z.array(positive()),
  full_attn_layers: z.array(positive()),
  num_heads: positive(),
  head_dim: positive(),
  short_conv_kernel_size: positive(),
});

const shape = {
  model_type: z.literal('kimi_linear').default('kimi_linear'),
  architectures: z.array(z.string()).optional(),
  vocab_size: positive().default(163840),
  hidden_size: positive().default(4096),
  /** Null means hidden_size / num_attention_heads (resolved after parsing). Unused by NoPE MLA. */
  head_dim: positive().nullable().default(null),
  intermediate_size: positive().default(11008),
  num_hidden_layers: positive().default(32),
  num_attention_heads: positive().default(32),
  /** Null means num_attention_heads (resolved after parsing). */
  num_key_value_heads: positive().nullable().default(null),
  hidden_act: z.literal('silu').default('silu'),
  initializer_range: z.number().default(0.02),
  rms_norm_eps: z.number().positive().default(1e-6),
  use_cache: z.boolean().default(true),
  pad_token_id: nonNegative().nullable().default(0),
  bos_token_id: nonNegative().nullable().default(1),
  eos_token_id: z
    .union([nonNegative(), z.array(nonNegative())])
    .nullable()
    .default(2),
  rope_theta: z.number().default(10000),
  rope_scaling: z.record(z.string(), z.unknown()).nullable().default(null),
  tie_word_embeddings: z.boolean().default(false),
  moe_intermediate_size: positive().nullable().default(null),
  moe_renormalize: z.boolean().default(true),
  moe_router_activation_func: z.enum(['sigmoid', 'softmax']).default('sigmoid'),
  num_experts: positive().nullable().default(null),
  num_experts_per_token: positive().nullable().default(null),
  num_shared_experts: nonNegative().default(0),
  routed_scaling_factor: z.number().default(1.0),
  first_k_dense_replace: nonNegative().default(0),
  moe_layer_freq: positive().default(1),
  use_grouped_topk: z.boolean().default(true),
  num_expert_group: positive().default(1),
  topk_group: positive().default(1),
  q_lora_rank: positive().nullable().default(null),
  kv_lora_rank: positive().nullable().default(null),
  qk_nope_head_dim: nonNegative().nullable().default(null),
  qk_rope_head_dim: nonNegative().nullable().default(null),
  v_head_dim: positive().nullable().default(null),
  mla_use_nope: z.boolean().nullable().default(false),
  num_nextn_predict_layers: nonNegative().default(0),
  linear_attn_config: LinearAttnConfig.nullable().default(null),
  model_max_length: positive().nullable().default(null),
  dtype: z.string().optional(),
  torch_dtype: z.string().optional(),
};

export const KimiConfigSchema = z.looseObject(shape);
const StrictSchema = z.object(shape);
/** The known fields (the loose schema keeps the others, untyped). */
type Parsed = z.output<typeof StrictSchema>;

export type KimiLinearConfig = Omit<Parsed, 'head_dim' | 'num_key_value_heads'> & {
  head_dim: number;
  num_key_value_heads: number;
};

export type MixerKind = 'kda' | 'mla';
export type FfnKind = 'dense' | 'moe';

export interface LayerSpec {
  /** 0-based. */
  index: number;
  mixer: MixerKind;
  ffn: FfnKind;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A value as config errors quote it: JSON, cut to 60 characters. */
export function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function issueText(issue: core.$ZodIssue): string {
  const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  const hasInput = 'input' in issue;
  const found = hasInput ? `${show(issue.input)} (${typeName(issue.input)})` : undefined;
  switch (issue.code) {
    case 'invalid_type': {
      const expected = issue.expected === 'int' ? 'integer' : issue.expected;
      if (!hasInput || issue.input === undefined) return `missing field '${path}' (expected ${expected})`;
      return `field '${path}' is ${found}, expected ${expected}`;
    }
    case 'too_small':
      return `field '${path}' is ${found}, expected ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `field '${path}' is ${found}, expected ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `field '${path}' is ${found}, expected ${issue.values.map((v) => show(v)).join(' or ')}`;
    case 'invalid_union':
      return `field '${path}' is ${found}, which matches none of its allowed types (${issue.message})`;
    default:
      return `field '${path}' is ${found ?? 'invalid'}: ${issue.message}`;
  }
}

/** Validate a parsed config.json object; `file` names it in errors. */
export function parseKimiConfig(json: unknown, file = 'config.json'): KimiLinearConfig {
  const r = KimiConfigSchema.safeParse(json, { reportInput: true });
  if (!r.success) {
    const lines = r.error.issues.slice(0, 10).map(issueText);
    const more = r.error.issues.length > 10 ? `\n  (${r.error.issues.length - 10} more)` : '';
    throw new ConfigError(`${file}: ${lines.length === 1 ? lines[0] : `\n  ${lines.join('\n  ')}`}${more}`);
  }
  const p = r.data as Parsed;
  const cfg: KimiLinearConfig = {
    ...p,
    head_dim: p.head_dim ?? Math.floor(p.hidden_size / p.num_attention_heads),
    num_key_value_heads: p.num_key_value_heads ?? p.num_attention_heads,
  };
  checkLayers(cfg, file);
  checkRequired(cfg, file);
  return cfg;
}

/** Parse config.json text (JSON errors name the file). */
export function parseKimiConfigText(text: string, file = 'config.json'): KimiLinearConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseKimiConfig(json, file);
}

function checkLayers(cfg: KimiLinearConfig, file: string): void {
  const lac = cfg.linear_attn_config;
  if (!lac) return;
  const L = cfg.num_hidden_layers;
  for (const key of ['kda_layers', 'full_attn_layers'] as const) {
    const seen = new Set<number>();
    for (const n of lac[key]) {
      if (n > L) {
        throw new ConfigError(
          `${file}: linear_attn_config.${key} lists layer ${n}, expected 1-based layer numbers 1..${L} (num_hidden_layers)`,
        );
      }
      if (seen.has(n)) throw new ConfigError(`${file}: linear_attn_config.${key} lists layer ${n} twice`);
      seen.add(n);
    }
  }
  const kda = new Set(lac.kda_layers);
  const full = new Set(lac.full_attn_layers);
  for (let i = 0; i < L; i++) {
    const inK = kda.has(i + 1);
    const inF = full.has(i + 1);
    if (inK === inF) {
      throw new ConfigError(
        `${file}: layer ${i} (number ${i + 1} in the 1-based lists) is in ${inK ? 'both' : 'neither of'} ` +
          `linear_attn_config.kda_layers and full_attn_layers; expected exactly one`,
      );
    }
  }
}

function checkRequired(cfg: KimiLinearConfig, file: string): void {
  const layers = layerMap(cfg);
  const mla = layers.find((l) => l.mixer === 'mla');
  if (mla) {
    for (const key of ['kv_lora_rank', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim'] as const) {
      if (cfg[key] === null) {
        throw new ConfigError(
          `${file}: missing field '${key}' (expected an integer; required because layer ${mla.index} is MLA)`,
        );
      }
    }
  }
  const moe = layers.find((l) => l.ffn === 'moe');
  if (cfg.num_experts !== null && moe) {
    for (const key of ['num_experts_per_token', 'moe_intermediate_size'] as const) {
      if (cfg[key] === null) {
        throw new ConfigError(
          `${file}: missing field '${key}' (expected an integer; required because num_experts is ${cfg.num_experts})`,
        );
      }
    }
    if (cfg.num_experts_per_token! > cfg.num_experts) {
      throw new ConfigError(
        `${file}: field 'num_experts_per_token' is ${cfg.num_experts_per_token}, expected <= num_experts (${cfg.num_experts})`,
      );
    }
    if (cfg.num_experts % cfg.num_expert_group !== 0 || cfg.topk_group > cfg.num_expert_group) {
      throw new ConfigError(
        `${file}: num_expert_group ${cfg.num_expert_group} / topk_group ${cfg.topk_group}: expected a group count ` +
          `dividing num_experts (${cfg.num_experts}) and topk_group <= num_expert_group`,
      );
    }
  }
}

/**
 * Values an MLA layer caches per token: the compressed latent (kv_lora_rank) and the rotary key part
 * (qk_rope_head_dim). Either may be null in a config without MLA layers (0 then).
 */
export function mlaLatentDim(cfg: KimiLinearConfig): number {
  return (cfg.kv_lora_rank ?? 0) + (cfg.qk_rope_head_dim ?? 0);
}
export function layerMixer(cfg: KimiLinearConfig, i: number): MixerKind {
  if (!Number.isInteger(i) || i < 0 || i >= cfg.num_hidden_layers) {
    throw new RangeError(`layer ${i} out of range 0..${cfg.num_hidden_layers - 1}`);
  }
  return cfg.linear_attn_config?.kda_layers.includes(i + 1) ? 'kda' : 'mla';
}

/** The MoE router's settings from the config (the same for inference and training). */
export function routerConfig(cfg: KimiLinearConfig): RouterConfig {
  return {
    numExperts: cfg.num_experts!,
    topK: cfg.num_experts_per_token!,
    activation: cfg.moe_router_activation_func === 'softmax' ? 'softmax' : 'sigmoid',
    renormalize: cfg.moe_renormalize,
    scaling: cfg.routed_scaling_factor,
    numGroups: cfg.use_grouped_topk ? cfg.num_expert_group : 1,
    topkGroup: cfg.use_grouped_topk ? cfg.topk_group : 1,
  };
}

export function isMoeLayer(cfg: KimiLinearConfig, i: number): boolean {
  return cfg.num_experts !== null && i >= cfg.first_k_dense_replace && i % cfg.moe_layer_freq === 0;
}

/** Every layer's mixer and ffn kind, in order. */
export function layerMap(cfg: KimiLinearConfig): LayerSpec[] {
  return Array.from({ length: cfg.num_hidden_layers }, (_, index) => ({
    index,
    mixer: layerMixer(cfg, index),
    ffn: isMoeLayer(cfg, index) ? 'moe' : 'dense',
  }));
}
