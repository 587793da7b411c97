import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { loadModel } from '../src/model/load.js';
import { Session } from '../src/model/session.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { expectClose, FIXTURES, gpuContext, hasGpu } from './helpers.js';

async function goldenCase1() {
  const f = await openSafetensors(`${FIXTURES}/golden/tiny-kimi-golden.safetensors`);
  const ids = (await f.readHost('case1.input_ids')).data as Int32Array;
  const logits = (await f.readHost('case1.logits')).data as Float32Array;
  await f.close();
  return { ids, logits, V: 256 };
}

/** Prefill `prompt` tokens, then decode the rest one by one; every step must give the full forward's logits. */
async function check(device: Device, prompt: number, steps: number, tol: number, cacheDtype: 'f32' | 'bf16') {
  const { ids, logits, V } = await goldenCase1();
  const model = await loadModel(`${FIXTURES}/tiny-kimi`, device);
  const s = new Session(model, { maxLength: 200, cacheDtype, pageSize: 16 });
  const row = (t: number) => logits.subarray(t * V, (t + 1) * V);
  expectClose(await s.prefill(ids.subarray(0, prompt)), row(prompt - 1), tol, `prefill logits at ${prompt - 1}`);
  for (let t = prompt; t < prompt + steps; t++) {
    expectClose(await s.step(ids[t]), row(t), tol, `decode logits at ${t}`);
  }
  expect(s.length).toBe(prompt + steps);
  s.dispose();
  model.weights.dispose();
}

describe('decoding token by token after a prefill reproduces the full-sequence logits (tiny-kimi case1)', () => {
  it('cpu backend, f32 cache: prefill 100, decode 30, within 1e-4', async () => {
    await check(cpu, 100, 30, 1e-4, 'f32');
  });
  it('cpu backend, a one-token prompt then 20 steps', async () => {
    await check(cpu, 1, 20, 1e-4, 'f32');
  });
  it.skipIf(!hasGpu)('WebGPU, f32 cache: prefill 70 (two KDA chunks), decode 20, within 1e-3', async () => {
    await check((await gpuContext())!, 70, 20, 1e-3, 'f32');
  });
  it.skipIf(!hasGpu)('WebGPU, bf16 latent cache: within bf16 rounding (2e-2)', async () => {
    await check((await gpuContext())!, 40, 10, 2e-2, 'bf16');
  });
});
