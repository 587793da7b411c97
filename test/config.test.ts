import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  isMoeLayer,
  layerMap,
  layerMixer,
  parseKimiConfig,
  parseKimiConfigText,
} from '../src/model/config.js';
import { loadKimiConfig } from '../src/model/loadConfig.js';
import { FIXTURES } from './helpers.js';

const TINY = join(FIXTURES, 'tiny-kimi/config.json');
const BIG = join(FIXTURES, 'configs/kimi-linear-48b-a3b.json');
// biome-ignore lint/suspicious/noExplicitAny: tests edit raw config JSON freely, including into wrong types
const tinyJson = () => JSON.parse(readFileSync(TINY, 'utf8')) as Record<string, any>;

function expectConfigError(json: unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    parseKimiConfig(json, 'cfg.json');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(/^cfg\.json: /);
  expect((err as Error).message).toMatch(pattern);
}

describe('kimi_linear config', () => {
  it('parses the tiny fixture: 4 layers KDA,KDA,KDA,MLA; layer 0 dense, 1-3 MoE', async () => {
    const cfg = await loadKimiConfig(TINY);
    expect(cfg.hidden_size).toBe(64);
    expect(cfg.rms_norm_eps).toBe(1e-5);
    expect(cfg.linear_attn_config?.num_heads).toBe(4);
    expect(layerMap(cfg)).toEqual([
      { index: 0, mixer: 'kda', ffn: 'dense' },
      { index: 1, mixer: 'kda', ffn: 'moe' },
      { index: 2, mixer: 'kda', ffn: 'moe' },
      { index: 3, mixer: 'mla', ffn: 'moe' },
    ]);
    expect(() => layerMixer(cfg, 4)).toThrow(/layer 4 out of range 0\.\.3/);
  });

  it('parses the released 48B-A3B config and keeps unknown fields', async () => {
    const cfg = await loadKimiConfig(BIG);
    const map = layerMap(cfg);
    expect(map.filter((l) => l.mixer === 'mla').map((l) => l.index + 1)).toEqual([4, 8, 12, 16, 20, 24, 27]);
    expect(map.filter((l) => l.ffn === 'dense').map((l) => l.index)).toEqual([0]);
    expect(cfg.num_key_value_heads).toBe(32);
    expect(cfg.head_dim).toBe(72);
    expect((cfg as Record<string, unknown>).auto_map).toBeDefined();
  });

  it('applies the released defaults (configuration_kimi.py) to omitted fields', () => {
    const cfg = parseKimiConfig({
      linear_attn_config: {
        kda_layers: [],
        full_attn_layers: [1, 2],
        num_heads: 2,
        head_dim: 8,
        short_conv_kernel_size: 4,
      },
      num_hidden_layers: 2,
      kv_lora_rank: 16,
      qk_nope_head_dim: 8,
      qk_rope_head_dim: 4,
      v_head_dim: 8,
    });
    expect(cfg.model_type).toBe('kimi_linear');
    expect(cfg.vocab_size).toBe(163840);
    expect(cfg.hidden_size).toBe(4096);
    expect(cfg.intermediate_size).toBe(11008);
    expect(cfg.num_attention_heads).toBe(32);
    expect(cfg.head_dim).toBe(128); // hidden_size / num_attention_heads
    expect(cfg.num_key_value_heads).toBe(32);
    expect(cfg.rms_norm_eps).toBe(1e-6);
    expect(cfg.moe_router_activation_func).toBe('sigmoid');
    expect(cfg.moe_renormalize).toBe(true);
    expect(cfg.routed_scaling_factor).toBe(1.0);
    expect(cfg.num_experts).toBeNull();
    expect(cfg.num_shared_experts).toBe(0);
    expect(cfg.first_k_dense_replace).toBe(0);
    expect(cfg.moe_layer_freq).toBe(1);
    expect(cfg.use_grouped_topk).toBe(true);
    expect(cfg.num_expert_group).toBe(1);
    expect(cfg.topk_group).toBe(1);
    expect(cfg.q_lora_rank).toBeNull();
    expect(cfg.mla_use_nope).toBe(false);
    expect(cfg.tie_word_embeddings).toBe(false);
    expect(cfg.rope_theta).toBe(10000);
    expect(layerMap(cfg).every((l) => l.ffn === 'dense')).toBe(true);
  });

  it('with no linear_attn_config every layer is MLA (as the released code)', () => {
    const j = tinyJson();
    delete j.linear_attn_config;
    expect(layerMap(parseKimiConfig(j)).map((l) => l.mixer)).toEqual(['mla', 'mla', 'mla', 'mla']);
  });

  it('isMoeLayer follows first_k_dense_replace and moe_layer_freq', () => {
    const j = tinyJson();
    j.num_hidden_layers = 8;
    j.linear_attn_config.kda_layers = [1, 2, 3, 5, 6, 7];
    j.linear_attn_config.full_attn_layers = [4, 8];
    j.first_k_dense_replace = 3;
    j.moe_layer_freq = 2;
    const cfg = parseKimiConfig(j);
    expect([...Array(8).keys()].filter((i) => isMoeLayer(cfg, i))).toEqual([4, 6]);
    j.num_experts = null;
    expect([...Array(8).keys()].some((i) => isMoeLayer(parseKimiConfig(j), i))).toBe(false);
  });

  it('a missing required field names the field path and the expected type', () => {
    const j = tinyJson();
    delete j.linear_attn_config.num_heads;
    expectConfigError(j, /missing field 'linear_attn_config\.num_heads' \(expected number\)/);
    const k = tinyJson();
    delete k.kv_lora_rank;
    expectConfigError(k, /missing field 'kv_lora_rank' \(expected an integer; required because layer 3 is MLA\)/);
    const m = tinyJson();
    delete m.moe_intermediate_size;
    expectConfigError(m, /missing field 'moe_intermediate_size' .*num_experts is 8/);
  });

  it('a wrong type names the field, the value found and the expected type', () => {
    const j = tinyJson();
    j.hidden_size = '64';
    expectConfigError(j, /field 'hidden_size' is "64" \(string\), expected number/);
    const k = tinyJson();
    k.num_hidden_layers = 4.5;
    expectConfigError(k, /field 'num_hidden_layers' is 4\.5 \(number\), expected integer/);
    const m = tinyJson();
    m.linear_attn_config.kda_layers = [1, 'two', 3];
    expectConfigError(m, /field 'linear_attn_config\.kda_layers\.1' is "two" \(string\), expected number/);
    const r = tinyJson();
    r.moe_router_activation_func = 'relu';
    expectConfigError(r, /field 'moe_router_activation_func' is "relu" \(string\), expected "sigmoid" or "softmax"/);
    const z = tinyJson();
    z.head_dim = 0;
    expectConfigError(z, /field 'head_dim' is 0 \(number\), expected > 0/);
    const t = tinyJson();
    t.model_type = 'deepseek_v3';
    expectConfigError(t, /field 'model_type' is "deepseek_v3" \(string\), expected "kimi_linear"/);
  });

  it('a layer in neither or both of kda_layers and full_attn_layers is an error naming the layer', () => {
    const j = tinyJson();
    j.linear_attn_config.kda_layers = [1, 2];
    expectConfigError(
      j,
      /layer 2 \(number 3 in the 1-based lists\) is in neither of linear_attn_config\.kda_layers and full_attn_layers/,
    );
    const k = tinyJson();
    k.linear_attn_config.full_attn_layers = [3, 4];
    expectConfigError(k, /layer 2 \(number 3 in the 1-based lists\) is in both/);
    const m = tinyJson();
    m.linear_attn_config.kda_layers = [1, 2, 3, 5];
    expectConfigError(m, /linear_attn_config\.kda_layers lists layer 5, expected 1-based layer numbers 1\.\.4/);
  });

  it('reports bad JSON and missing files with the file name', async () => {
    expect(() => parseKimiConfigText('{"hidden_size": ', 'x/config.json')).toThrow(/^x\/config\.json: not valid JSON/);
    await expect(loadKimiConfig(join(FIXTURES, 'nope.json'))).rejects.toThrow(/nope\.json: file not found/);
  });
});
