/**
 * Ablation variants get gradients without extra code: a model with another layer map (MLA, KDA, MLA),
 * RoPE instead of NoPE, dense FFNs only and tied embeddings, random weights, is differentiated through
 * the same forward. WebGPU must agree with the cpu backend on d(sum(logits * R)) / d parameter for a
 * fixed random R (1e-3 relative to each tensor's max |g|: the GPU runs the chunked KDA backward, the
 * cpu the sequential one, ~1e-4 apart here), and the cpu gradient of one parameter is checked by
 * central finite differences.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { Tape, withTape } from '../src/autograd/tape.js';
import { parseKimiConfig } from '../src/model/config.js';
import { KimiLinearModel } from '../src/model/forward.js';
import { randomModelWeights } from '../src/model/randomWeights.js';
import { ModelWeights } from '../src/model/weights.js';
import { scope } from '../src/tensor/scope.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { expectClose, FIXTURES, gpuContext, hasGpu } from './helpers.js';

async function variant() {
  const json = JSON.parse(await readFile(`${FIXTURES}/tiny-kimi/config.json`, 'utf8'));
  json.num_hidden_layers = 3;
  json.linear_attn_config.kda_layers = [2];
  json.linear_attn_config.full_attn_layers = [1, 3];
  json.mla_use_nope = false;
  json.first_k_dense_replace = 3;
  json.tie_word_embeddings = true;
  return parseKimiConfig(json);
}

async function onDevice(w: ModelWeights, device: Device): Promise<ModelWeights> {
  const t = new Map<string, Tensor>();
  for (const [n, x] of w.tensors) t.set(n, device.fromHost(await x.toFloat32(), x.shape));
  return new ModelWeights(t, new Map());
}

const [B, T] = [2, 9];

/** d sum(logits * R) / d every parameter, on the host; every device tensor made here is freed again. */
async function grads(model: KimiLinearModel, device: Device, ids: Int32Array, R: Float32Array) {
  const tape = new Tape({ leaves: model.weights.tensors.values() });
  const leaves = scope(() => {
    const logits = withTape(tape, () => model.head(model.hidden(device.fromHost(ids, [B, T], 'i32'))));
    return tape.backward(logits, device.fromHost(R, logits.shape));
  });
  const out = new Map<string, Float32Array>();
  for (const [n, t] of model.weights.tensors) out.set(n, await leaves.get(t.id)!.toFloat32());
  for (const g of leaves.values()) g.dispose();
  return out;
}

describe('a model variant (MLA/KDA/MLA, RoPE, dense FFN, tied embeddings) differentiates through the one forward', () => {
  it.skipIf(!hasGpu)(
    'WebGPU agrees with the cpu backend on every parameter gradient',
    async () => {
      const cfg = await variant();
      const rng = new Rng(11);
      const ids = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
      const R = rng.normalArray(B * T * cfg.vocab_size);
      const w = randomModelWeights(cfg, cpu, 'f32', 3);
      const want = await grads(new KimiLinearModel(cfg, w), cpu, ids, R);
      const gpu = (await gpuContext())!;
      const onGpu = new KimiLinearModel(cfg, await onDevice(w, gpu));
      await gpu.sync();
      const live = gpu.pool.stats().liveBytes;
      const got = await grads(onGpu, gpu, ids, R);
      await gpu.sync();
      // Saved activations, gradients and temporaries all went back to the pool (only the weights stay live).
      expect(gpu.pool.stats().liveBytes).toBe(live);
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [n, g] of want) expectClose(got.get(n)!, g, 1e-3, n);
    },
    // ~8 s with Mesa's shader cache warm; a cold cache compiles the KDA and attention backward kernels for minutes.
    300_000,
  );

  it('cpu gradient of q_proj (RoPE part) and a KDA A_log match central finite differences', async () => {
    const cfg = await variant();
    const rng = new Rng(12);
    const ids = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
    const R = rng.normalArray(B * T * cfg.vocab_size);
    const w = randomModelWeights(cfg, cpu, 'f32', 4);
    const model = new KimiLinearModel(cfg, w);
    const g = await grads(model, cpu, ids, R);
    const objective = async () => {
      const y = await model.forward(cpu.fromHost(ids, [B, T], 'i32')).logits.toFloat32();
      return y.reduce((s, v, i) => s + v * R[i], 0);
    };
    const dn = cfg.qk_nope_head_dim!;
    // Row dn of q_proj feeds head 0's first rotary channel; A_log of head 1 of the KDA layer.
    for (const [name, j] of [
      ['model.layers.0.self_attn.q_proj.weight', dn * cfg.hidden_size + 3],
      ['model.layers.1.self_attn.A_log', 1],
    ] as const) {
      const data = (w.get(name).storage as unknown as { data: Float32Array }).data;
      const keep = data[j];
      const eps = 1e-3;
      data[j] = keep + eps;
      const up = await objective();
      data[j] = keep - eps;
      const down = await objective();
      data[j] = keep;
      const fd = (up - down) / (2 * eps);
      const an = g.get(name)![j];
      const scale = Math.max(...Array.from(g.get(name)!, Math.abs));
      expect(Math.abs(fd - an) / scale, `${name}[${j}]: finite difference ${fd} vs ${an}`).toBeLessThan(1e-2);
    }
  });
});
