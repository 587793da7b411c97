import { describe, expect, it } from 'vitest';
import { openCheckpoint, openSafetensors } from '../src/io/safetensors/index.js';
import { loadKimiConfig } from '../src/model/loadConfig.js';
import { KimiLinearModel, nextTokenLoss } from '../src/model/forward.js';
import { loadModelWeights } from '../src/model/weights.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { expectClose, FIXTURES, gpuContext, hasGpu } from './helpers.js';

const MODEL = `${FIXTURES}/tiny-kimi`;
const GOLDEN = `${FIXTURES}/golden/tiny-kimi-golden.safetensors`;

async function golden(name: string): Promise<Float32Array | Int32Array> {
  const f = await openSafetensors(GOLDEN);
  try {
    if (!f.has(name)) throw new Error(`golden file lacks ${name}`);
    return (await f.readHost(name)).data as Float32Array | Int32Array;
  } finally {
    await f.close();
  }
}

async function runCase(device: Device, c: string) {
  const cfg = await loadKimiConfig(`${MODEL}/config.json`);
  const ckpt = await openCheckpoint(MODEL);
  const weights = await loadModelWeights(ckpt, cfg, device);
  const ids = (await golden(`${c}.input_ids`)) as Int32Array;
  const goldenLogits = (await golden(`${c}.logits`)) as Float32Array;
  const V = cfg.vocab_size;
  const B = c === 'case0' ? 2 : 1;
  const T = ids.length / B;
  const model = new KimiLinearModel(cfg, weights);
  const out = model.forward(device.fromHost(ids, [B, T], 'i32'));
  const logits = await out.logits.toFloat32();
  const routes = new Map<number, Int32Array>();
  for (const [layer, idx] of out.routes) routes.set(layer, (await idx.read()) as Int32Array);
  return { logits, goldenLogits, ids, B, T, V, routes, k: cfg.num_experts_per_token! };
}

async function checkCase(device: Device, c: string, tol: number) {
  const r = await runCase(device, c);
  expectClose(r.logits, r.goldenLogits, tol, `${c} logits`);
  const loss = nextTokenLoss(r.logits, r.ids, r.B, r.T, r.V);
  const goldenLoss = (await golden(`${c}.loss`))[0];
  expect(Math.abs(loss - goldenLoss) / Math.abs(goldenLoss), `${c} loss ${loss} vs ${goldenLoss}`).toBeLessThan(1e-4);
  for (const [layer, idx] of r.routes) {
    const want = (await golden(`${c}.route.${layer}`)) as Int32Array;
    const got = new Int32Array(idx.length);
    for (let n = 0; n < idx.length / r.k; n++) got.set(idx.slice(n * r.k, (n + 1) * r.k).sort(), n * r.k);
    expect(Array.from(got), `${c} routes of layer ${layer}`).toEqual(Array.from(want));
  }
}

describe('tiny-kimi forward against the golden float64 implementation', () => {
  for (const c of ['case0', 'case1']) {
    it(`${c} on the cpu backend: logits within 1e-4, loss within 1e-4, identical routes`, async () => {
      await checkCase(cpu, c, 1e-4);
    });
    it.skipIf(!hasGpu)(`${c} on WebGPU: logits within 1e-3, loss within 1e-4, identical routes`, async () => {
      await checkCase((await gpuContext())!, c, 1e-3);
    });
  }
});

describe('a bf16 copy of the checkpoint', () => {
  // bf16 weights move logits by ~2^-9 relative per weight, but they also flip some near-tied MoE routing
  // choices, and a flipped expert changes that token's logits by far more. So: the bf16 path must agree
  // exactly between backends, and most positions must stay within bf16 rounding of the f32 golden logits.
  it.skipIf(!hasGpu)('loads bf16 matrices; cpu and WebGPU agree; the median position is within 2e-2', async () => {
    const gpu = (await gpuContext())!;
    const { loadModel } = await import('../src/model/load.js');
    const { relErr } = await import('./helpers.js');
    const ids = (await golden('case0.input_ids')) as Int32Array;
    const gold = (await golden('case0.logits')) as Float32Array;
    const out: Float32Array[] = [];
    for (const dev of [cpu, gpu]) {
      const model = await loadModel(MODEL, dev, { dtype: 'bf16' });
      expect(model.w('model.layers.0.mlp.gate_proj.weight').dtype).toBe('bf16');
      expect(model.w('model.layers.0.self_attn.A_log').dtype).toBe('f32');
      out.push(await model.forward(dev.fromHost(ids, [2, ids.length / 2], 'i32')).logits.toFloat32());
      model.weights.dispose();
    }
    expectClose(out[1], out[0], 1e-4, 'WebGPU bf16 vs cpu bf16');
    const V = 256;
    const perRow = Array.from({ length: ids.length }, (_, t) =>
      relErr(out[1].subarray(t * V, (t + 1) * V), gold.subarray(t * V, (t + 1) * V)),
    ).sort((a, b) => a - b);
    expect(perRow[perRow.length >> 1], 'median per-position error').toBeLessThan(2e-2);
  });
});
