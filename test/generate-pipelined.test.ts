/**
 * Pipelined generation (BatchSession.stepOnDevice): tokens chosen on the device, step n + 1 recorded
 * from them before they are read back. It must give exactly the tokens (and events) of the plain path,
 * which reads each step's logits back and samples on the host: greedy, seeded top-k/top-p sampling, and
 * a batch where a stop token ends one sequence while a step is in flight. The device sampler is checked
 * against its plain-TS reference on awkward vocabulary sizes, and the reference against the host Sampler.
 */
import { describe, expect, it, vi } from 'vitest';
import { generateBatch, type GenerateOptions, type SequenceEvent } from '../src/generate/generate.js';
import { Sampler } from '../src/generate/sampler.js';
import { argmax } from '../src/kernels/reduce/index.js';
import { argmaxReference } from '../src/kernels/reduce/reference.js';
import { sampleCandidates, sampleTopK, topkSlices } from '../src/kernels/sample/index.js';
import { sampleCandidatesReference } from '../src/kernels/sample/reference.js';
import { topkReference } from '../src/kernels/topk/reference.js';
import { BatchSession } from '../src/model/batchSession.js';
import { loadModel } from '../src/model/load.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, FIXTURES, gpuContext, hasGpu } from './helpers.js';

/** Rows of logits with ties (rounded to quarters) and a spread wide enough that top-p cuts matter. */
function logitsRows(rng: Rng, B: number, V: number): Float32Array {
  return Float32Array.from({ length: B * V }, () => Math.round(rng.uniform(-12, 12)) / 4);
}

const SETTINGS = [
  { temperature: 1, topK: 1, topP: 1 },
  { temperature: 0.7, topK: 5, topP: 1 },
  { temperature: 1.3, topK: 64, topP: 0.9 },
  { temperature: 0.25, topK: 40, topP: 0.5 },
];

describe('device sampling', () => {
  it('sampleCandidatesReference is the host Sampler after its top-k cut (same draws, same tokens)', () => {
    for (const V of AWKWARD) {
      for (const [si, s] of SETTINGS.entries()) {
        const x = logitsRows(new Rng(V + si), 1, V);
        const k = Math.min(s.topK, V);
        const c = topkReference(x, 1, V, k);
        for (let seed = 0; seed < 20; seed++) {
          const host = new Sampler({ ...s, seed }).sample(x);
          const u = new Sampler({ ...s, seed }).draw();
          const ref = sampleCandidatesReference(c.values, c.indices, [u], 1, k, s);
          expect(ref[0], `V=${V} ${JSON.stringify(s)} seed ${seed}`).toBe(host);
        }
      }
    }
  });

  it.skipIf(!hasGpu)('webgpu: sampleTopK and argmax equal their references on awkward vocabularies', async () => {
    const gpu = (await gpuContext())!;
    const B = 5;
    // Rows of 65 and more take the two-stage top-k for small k (topkSlices > 1), with ties across slices.
    expect(topkSlices(1000, 5)).toBeGreaterThan(1);
    expect(topkSlices(65, 1)).toBeGreaterThan(1);
    for (const V of [...AWKWARD, 5003]) {
      const x = logitsRows(new Rng(3 * V), B, V);
      const xt = gpu.fromHost(x, [B, V]);
      expect(Array.from(await argmax(xt).read()), `argmax V=${V}`).toEqual(Array.from(argmaxReference(x, B, V)));
      for (const [si, s] of SETTINGS.entries()) {
        const k = Math.min(s.topK, V);
        const rng = new Rng(100 * V + si);
        const u = Float32Array.from({ length: B }, () => rng.next());
        const c = topkReference(x, B, V, k);
        const want = sampleCandidatesReference(c.values, c.indices, u, B, k, s);
        const got = sampleTopK(xt, gpu.fromHost(u, [B]), s);
        expect(Array.from(await got.read()), `V=${V} ${JSON.stringify(s)}`).toEqual(Array.from(want));
        // The cpu op (what the reference runs on) agrees too.
        const onCpu = sampleCandidates(
          cpu.fromHost(c.values, [B, k]),
          cpu.fromHost(c.indices, [B, k], 'i32'),
          cpu.fromHost(u, [B]),
          s,
        );
        expect(Array.from(await onCpu.read())).toEqual(Array.from(want));
      }
    }
  });

  it('rejects what the device sampler cannot do, naming it', () => {
    const x = cpu.fromHost(new Float32Array(8), [1, 8]);
    const u = cpu.fromHost(new Float32Array(1), [1]);
    expect(() => sampleTopK(x, u, { temperature: 1, topK: 65, topP: 1 })).toThrow(/topK = 65/);
    expect(() => sampleTopK(x, u, { temperature: 0, topK: 4, topP: 1 })).toThrow(/temperature = 0/);
    expect(new Sampler({ topK: 20, repetitionPenalty: 1.2 }).onDevice(256)).toBeUndefined();
    expect(new Sampler({ temperature: 1 }).onDevice(256)).toBeUndefined();
    expect(new Sampler({ greedy: true }).onDevice(256)).toBe('greedy');
    expect(new Sampler({ topK: 500 }).onDevice(7)).toEqual({ temperature: 1, topK: 7, topP: 1 });
  });
});

async function events(device: Device, prompts: number[][], opts: GenerateOptions): Promise<SequenceEvent[]> {
  const model = await loadModel(`${FIXTURES}/tiny-kimi`, device);
  const out: SequenceEvent[] = [];
  for await (const e of generateBatch(model, prompts, undefined, opts)) out.push(e);
  return out;
}

const PROMPTS = [[72, 105, 33], [1], Array.from({ length: 12 }, (_, i) => 97 + (i % 26))];

async function samePaths(device: Device, prompts: number[][], opts: GenerateOptions, pickStop = false) {
  const plain = await events(device, prompts, { ...opts, pipeline: false });
  let o = opts;
  if (pickStop) {
    // Stop on sequence 0's third token: it leaves the batch while the next step is in flight.
    const first = plain.filter((e) => e.type === 'token' && e.sequence === 0);
    o = { ...opts, stopTokens: [(first[2] as { token: number }).token] };
  }
  const a = pickStop ? await events(device, prompts, { ...o, pipeline: false }) : plain;
  const spy = vi.spyOn(BatchSession.prototype, 'stepOnDevice');
  const b = await events(device, prompts, { ...o, pipeline: true });
  // The pipelined run did take the device path (one call per decode step of the batch).
  expect(spy.mock.calls.length).toBeGreaterThan(2);
  spy.mockRestore();
  expect(b).toEqual(a);
  return a;
}

describe("pipelined generation gives the plain path's tokens", () => {
  const cases: [string, GenerateOptions][] = [
    ['greedy', { greedy: true, maxTokens: 6 }],
    ['seeded top-k / top-p sampling', { temperature: 1.2, topK: 20, topP: 0.9, seed: 7, maxTokens: 6 }],
  ];
  for (const [name, opts] of cases) {
    it(`cpu: ${name}, one prompt and a batch with a stop token`, async () => {
      await samePaths(cpu, [PROMPTS[0]], opts);
      const ev = await samePaths(cpu, PROMPTS, opts, true);
      expect(ev.some((e) => e.type === 'done' && e.stopped === 'stop_token')).toBe(true);
    });
    it.skipIf(!hasGpu)(`webgpu: ${name}, one prompt and a batch with a stop token`, async () => {
      const gpu = (await gpuContext())!;
      await samePaths(gpu, [PROMPTS[0]], opts);
      const ev = await samePaths(gpu, PROMPTS, opts, true);
      expect(ev.some((e) => e.type === 'done' && e.stopped === 'stop_token')).toBe(true);
    });
  }
});
