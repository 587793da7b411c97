/**
 * modelGradients on the tiny-kimi fixture against the golden float64 gradients (case0: B=2, T=45; KDA
 * layers 0-2, MLA layer 3, MoE layers 1-3): every `case0.grad.*` tensor within 1e-3 relative to that
 * tensor's max |g| (the README's tolerance for gradients), the loss within 1e-4 of `case0.loss`, on the
 * cpu backend and on WebGPU, with and without per-layer checkpointing. Also the stats' values against
 * the same quantities computed independently on the host.
 */
import { describe, expect, it, vi } from 'vitest';
import { GpuContext } from '../src/gpu/context.js';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { Tape, withTape } from '../src/autograd/tape.js';
import { loadModel } from '../src/model/load.js';
import { scope } from '../src/tensor/scope.js';
import { gradientsByCheckpointName, modelGradients } from '../src/model/gradients.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { FIXTURES, gpuContext, hasGpu, relErr } from './helpers.js';

const MODEL = `${FIXTURES}/tiny-kimi`;
const GOLDEN = `${FIXTURES}/golden/tiny-kimi-golden.safetensors`;

async function goldenGrads(): Promise<{ ids: Int32Array; loss: number; grads: Map<string, Float32Array> }> {
  const f = await openSafetensors(GOLDEN);
  try {
    const grads = new Map<string, Float32Array>();
    for (const name of f.names) {
      if (name.startsWith('case0.grad.'))
        grads.set(name.slice('case0.grad.'.length), (await f.readHost(name)).data as Float32Array);
    }
    if (grads.size === 0) throw new Error('golden file has no case0.grad.* tensors');
    return {
      ids: (await f.readHost('case0.input_ids')).data as Int32Array,
      loss: ((await f.readHost('case0.loss')).data as Float32Array)[0],
      grads,
    };
  } finally {
    await f.close();
  }
}

async function checkGradients(device: Device, checkpointing: boolean) {
  const gold = await goldenGrads();
  const model = await loadModel(MODEL, device);
  const ids = device.fromHost(gold.ids, [2, gold.ids.length / 2], 'i32');
  const gpu = device instanceof GpuContext ? device : undefined;
  await device.sync();
  const live = gpu?.pool.stats().liveBytes;
  // One command stream: modelGradients must not wait on the device or read anything back.
  const spies = gpu ? [vi.spyOn(gpu, 'read'), vi.spyOn(gpu, 'readBytes'), vi.spyOn(gpu, 'sync')] : [];
  const r = modelGradients(model, ids, { checkpointing });
  for (const s of spies) {
    expect(s, 'a readback or sync inside modelGradients').not.toHaveBeenCalled();
    s.mockRestore();
  }
  const loss = (await r.loss.toFloat32())[0];
  expect(Math.abs(loss - gold.loss) / gold.loss, `loss ${loss} vs golden ${gold.loss}`).toBeLessThan(1e-4);
  const byName = gradientsByCheckpointName(r.grads);
  const failures: string[] = [];
  let worst = 0;
  for (const [name, want] of gold.grads) {
    if (name.endsWith('e_score_correction_bias')) {
      // Not trained by gradient: the golden file stores zeros, and modelGradients gives no entry.
      expect(want.every((v) => v === 0)).toBe(true);
      expect(byName.has(name), `${name} must have no gradient entry`).toBe(false);
      continue;
    }
    const got = byName.get(name);
    if (!got) {
      failures.push(`${name}: missing`);
      continue;
    }
    const err = relErr(await got.toFloat32(), want);
    worst = Math.max(worst, err);
    if (err > 1e-3) failures.push(`${name}: relative error ${err.toExponential(2)}`);
  }
  for (const name of byName.keys()) if (!gold.grads.has(name)) failures.push(`${name}: not in the golden file`);
  expect(failures, `worst ${worst.toExponential(2)}`).toEqual([]);
  for (const t of byName.values()) t.dispose();
  if (gpu) {
    // Everything the tape saved or made is freed; what remains live is exactly what was returned.
    r.grads.dispose();
    r.loss.dispose();
    for (const t of r.stats.values()) t.dispose();
    await gpu.sync();
    expect(gpu.pool.stats().liveBytes).toBe(live);
  }
  return { model, r, ids: gold.ids };
}

describe('tiny-kimi gradients against the golden float64 implementation', () => {
  for (const checkpointing of [false, true]) {
    it(`cpu backend${checkpointing ? ', per-layer checkpointing' : ''}: every gradient within 1e-3, loss within 1e-4`, async () => {
      await checkGradients(cpu, checkpointing);
    });
    it.skipIf(!hasGpu)(
      `WebGPU${checkpointing ? ', per-layer checkpointing' : ''}: every gradient within 1e-3, loss within 1e-4`,
      async () => {
        await checkGradients((await gpuContext())!, checkpointing);
      },
      // Seconds with Mesa's shader cache warm; a cold cache compiles the KDA and attention backward for minutes.
      300_000,
    );
  }

  it('stats: present for every layer and equal to the same quantities computed on the host', async () => {
    const { model, r, ids } = await checkGradients(cpu, false);
    const cfg = model.cfg;
    const keys = [...r.stats.keys()].sort();
    const want: string[] = [];
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      want.push(`layers.${i}.act_rms`);
      if (i < 3)
        for (const k of ['decay_mean', 'decay_min', 'beta_mean', 'beta_min', 'beta_max'])
          want.push(`layers.${i}.kda.${k}`);
      else want.push(`layers.${i}.mla.max_logit`);
      if (i >= 1) want.push(`layers.${i}.moe.expert_counts`);
    }
    expect(keys).toEqual(want.sort());
    // Expert counts sum to N * top_k and are i32; the MLA maxima are per head.
    const N = ids.length;
    for (let i = 1; i < 4; i++) {
      const c = r.stats.get(`layers.${i}.moe.expert_counts`)!;
      expect(c.dtype).toBe('i32');
      expect(Array.from(await c.read()).reduce((a, b) => a + b, 0)).toBe(N * cfg.num_experts_per_token!);
    }
    expect(r.stats.get('layers.3.mla.max_logit')!.shape).toEqual([cfg.num_attention_heads]);
    // Beta of layer 0 recomputed on the host from b_proj(rmsnorm(embed(ids))).
    const D = cfg.hidden_size;
    const emb = await model.w('model.embed_tokens.weight').toFloat32();
    const ln = await model.w('model.layers.0.input_layernorm.weight').toFloat32();
    const bp = await model.w('model.layers.0.self_attn.b_proj.weight').toFloat32();
    const H = bp.length / D;
    let sum = 0;
    let lo = 1;
    let hi = 0;
    for (const id of ids) {
      const x = emb.subarray(id * D, (id + 1) * D);
      const rms = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / D + cfg.rms_norm_eps);
      for (let h = 0; h < H; h++) {
        let z = 0;
        for (let j = 0; j < D; j++) z += bp[h * D + j] * x[j] * rms * ln[j];
        const b = 1 / (1 + Math.exp(-z));
        sum += b;
        lo = Math.min(lo, b);
        hi = Math.max(hi, b);
      }
    }
    const stat = async (k: string) => (await r.stats.get(`layers.0.kda.${k}`)!.toFloat32())[0];
    expect(await stat('beta_mean')).toBeCloseTo(sum / (ids.length * H), 5);
    expect(await stat('beta_min')).toBeCloseTo(lo, 5);
    expect(await stat('beta_max')).toBeCloseTo(hi, 5);
    const decayMean = await stat('decay_mean');
    expect(decayMean > 0 && decayMean < 1).toBe(true);
    expect(await stat('decay_min')).toBeLessThanOrEqual(decayMean);
  });

  it.skipIf(!hasGpu)(
    'checkpointing keeps only the layer inputs: far less is held between forward and backward',
    async () => {
      const gpu = (await gpuContext())!;
      const model = await loadModel(MODEL, gpu);
      const ids = gpu.fromHost(
        Int32Array.from({ length: 2 * 64 }, (_, i) => (i * 37) % 256),
        [2, 64],
        'i32',
      );
      const params = [
        ...model.weights.tensors.values(),
        ...[...model.weights.experts.values()].flatMap((e) => [e.w1, e.w3, e.w2]),
      ];
      const held = async (checkpoint: boolean) => {
        await gpu.sync();
        const base = gpu.pool.stats().liveBytes;
        const tape = new Tape({ leaves: params });
        const x = scope(() => withTape(tape, () => model.hidden(ids, { checkpoint })));
        await gpu.sync();
        const bytes = gpu.pool.stats().liveBytes - base;
        tape.dispose();
        x.dispose();
        return bytes;
      };
      const [full, ckpt] = [await held(false), await held(true)];
      // 4 layers: the checkpointed tape holds 4 residual streams [2, 64, 64] f32 (and the output), 64 KiB
      // each; the full tape every saved activation (~13x more at this size).
      expect(ckpt).toBeLessThanOrEqual(5 * 2 * 64 * 64 * 4);
      expect(full).toBeGreaterThan(5 * ckpt);
    },
  );

  it('rejects ids it cannot take a next-token loss over, and bf16 weights', async () => {
    const model = await loadModel(MODEL, cpu);
    expect(() => modelGradients(model, cpu.fromHost(new Int32Array([1, 2]), [2, 1], 'i32'))).toThrow(
      /T=1 positions, expected >= 2/,
    );
    expect(() => modelGradients(model, cpu.fromHost(new Float32Array([1, 2]), [1, 2]))).toThrow(
      /expected i32 \[B, T\]/,
    );
    const bf16 = await loadModel(MODEL, cpu, { dtype: 'bf16' });
    expect(() => modelGradients(bf16, cpu.fromHost(new Int32Array([1, 2]), [1, 2], 'i32'))).toThrow(
      /modelGradients: [\w.]+weight is bf16, expected f32/,
    );
  });
});
