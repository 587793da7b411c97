import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, generateBatch } from '../src/generate/generate.js';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { BatchSession } from '../src/model/batchSession.js';
import { KimiLinearModel } from '../src/model/forward.js';
import { loadModel } from '../src/model/load.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { cli, expectClose, FIXTURES, gpuContext, hasGpu, relErr } from './helpers.js';

const V = 256;

async function goldenCase1() {
  const f = await openSafetensors(`${FIXTURES}/golden/tiny-kimi-golden.safetensors`);
  const ids = (await f.readHost('case1.input_ids')).data as Int32Array;
  const logits = (await f.readHost('case1.logits')).data as Float32Array;
  await f.close();
  return { ids, row: (t: number) => logits.subarray(t * V, (t + 1) * V) };
}

/**
 * Prefixes of the golden sequence of different lengths decoded together, teacher-forced with the
 * golden tokens: every sequence's logits at every step must be the full forward's at its position.
 * Midway one sequence leaves and a new one joins (continuous batching); the rest must not notice.
 */
async function batchMatchesForward(device: Device, lens: number[], steps: number, tol: number, maxPoolBytes?: number) {
  const { ids, row } = await goldenCase1();
  const model = await loadModel(`${FIXTURES}/tiny-kimi`, device);
  const s = new BatchSession(model, { maxSequences: lens.length, maxLength: 120, pageSize: 8, maxPoolBytes });
  // Sharded pools: two sequences per shard (15 pages of 8 x 24 f32 per sequence).
  if (maxPoolBytes) expect(s.cache.shardCount).toBe(Math.ceil(lens.length / 2));
  const pos = new Map<number, number>(); // seq -> its next position
  for (const L of lens) {
    const { seq, logits } = await s.add(ids.subarray(0, L));
    expectClose(logits, row(L - 1), tol, `prefill of ${L}`);
    pos.set(seq, L);
  }
  for (let t = 0; t < steps; t++) {
    if (t === Math.floor(steps / 2)) {
      const leaving = s.active[1];
      s.remove(leaving);
      pos.delete(leaving);
      const L = 3;
      const { seq, logits } = await s.add(ids.subarray(0, L));
      expectClose(logits, row(L - 1), tol, 'prefill of a joining sequence');
      pos.set(seq, L);
    }
    const active = [...s.active];
    const logits = await s.step(active.map((q) => ids[pos.get(q)!]));
    for (const [b, q] of active.entries()) {
      const p = pos.get(q)!;
      expectClose(logits.subarray(b * V, (b + 1) * V), row(p), tol, `step ${t}, sequence ${q} at ${p}`);
      expect(s.length(q)).toBe(p + 1);
      pos.set(q, p + 1);
    }
  }
  s.dispose();
  model.weights.dispose();
}

/** Greedy tokens of a batch equal those of each prompt decoded alone. */
async function batchEqualsAlone(device: Device, prompts: number[][], maxTokens: number) {
  const model = await loadModel(`${FIXTURES}/tiny-kimi`, device);
  const alone: number[][] = [];
  for (const p of prompts) {
    const out: number[] = [];
    for await (const t of generate(model, p, undefined, { greedy: true, maxTokens })) out.push(t.token);
    alone.push(out);
  }
  const batch: number[][] = prompts.map(() => []);
  const done: number[] = [];
  for await (const e of generate(model, prompts, undefined, { greedy: true, maxTokens })) {
    if (e.type === 'token') {
      expect(e.index).toBe(batch[e.sequence].length);
      batch[e.sequence].push(e.token);
    } else {
      expect(e.tokens).toEqual(batch[e.sequence]);
      done.push(e.sequence);
    }
  }
  expect(done.sort()).toEqual(prompts.map((_, i) => i));
  expect(batch).toEqual(alone);
  model.weights.dispose();
  return batch;
}

describe('a batch of prompts of different lengths (tiny-kimi)', () => {
  it('cpu: decode logits of the batch equal the full-sequence forward (1e-4), through a leave and a join', async () => {
    await batchMatchesForward(cpu, [40, 1, 17, 9], 12, 1e-4);
  });

  it('cpu: the same with the latent pool split into shards (two sequences each), rows out of shard order after a rejoin', async () => {
    await batchMatchesForward(cpu, [40, 1, 17, 9], 12, 1e-4, 2 * 15 * 8 * 24 * 4);
  });

  it('cpu: greedy tokens of the batch equal each prompt alone; stop tokens end one sequence early', async () => {
    const prompts = [[72, 105, 33], [1], Array.from({ length: 30 }, (_, i) => 97 + (i % 26))];
    const batch = await batchEqualsAlone(cpu, prompts, 10);
    // Stop on sequence 0's third token: it ends there, the others run to max tokens unchanged.
    const model = await loadModel(`${FIXTURES}/tiny-kimi`, cpu);
    const stop = batch[0][2];
    const got: number[][] = prompts.map(() => []);
    const ends: string[] = [];
    for await (const e of generateBatch(model, prompts, undefined, { greedy: true, maxTokens: 10, stopTokens: [stop] }))
      if (e.type === 'token') got[e.sequence].push(e.token);
      else ends[e.sequence] = e.stopped;
    for (const [i, b] of batch.entries()) {
      const cut = b.indexOf(stop);
      expect(got[i]).toEqual(cut < 0 ? b : b.slice(0, cut + 1));
      expect(ends[i]).toBe(cut < 0 ? 'max_tokens' : 'stop_token');
    }
    expect(ends[0]).toBe('stop_token');
  });

  it('rejects bad input, naming it', async () => {
    const model = await loadModel(`${FIXTURES}/tiny-kimi`, cpu);
    const s = new BatchSession(model, { maxSequences: 1, maxLength: 8, pageSize: 4 });
    await s.add([1, 2]);
    await expect(s.add([3])).rejects.toThrow(/all 1 sequence slots are in use/);
    await expect(s.step([1, 2])).rejects.toThrow(/2 tokens for a batch of 1/);
    expect(() => s.remove(5)).toThrow(/sequence 5 is not in the batch/);
    for (let t = 0; t < 6; t++) await s.step([1]);
    await expect(s.step([1])).rejects.toThrow(/sequence 0 holds 8 tokens, the maxLength/);
    expect(s.length(0)).toBe(8);
    s.dispose();
    const gen = generateBatch(model, [[1], []], undefined, {});
    await expect(gen.next()).rejects.toThrow(/prompt 1 is empty/);
    const big = generateBatch(model, [[1, 300]], undefined, {});
    await expect(big.next()).rejects.toThrow(/prompt 0 position 1: token 300 is not in \[0, 256\)/);
  });

  it.skipIf(!hasGpu)(
    'WebGPU: decode logits of the batch equal the full forward (1e-3); tokens equal each alone',
    async () => {
      const gpu = (await gpuContext())!;
      await batchMatchesForward(gpu, [20, 1, 9], 6, 1e-3);
      await batchMatchesForward(gpu, [20, 1, 9], 4, 1e-3, 2 * 15 * 8 * 24 * 4);
      await batchEqualsAlone(gpu, [[72, 105, 33], Array.from({ length: 12 }, (_, i) => 97 + i)], 5);
    },
  );
});

describe('MLA with rotary embeddings (mla_use_nope: false) on the tiny checkpoint', () => {
  async function ropeModels(device: Device) {
    const nope = await loadModel(`${FIXTURES}/tiny-kimi`, device);
    const rope = new KimiLinearModel({ ...nope.cfg, mla_use_nope: false }, nope.weights);
    return { nope, rope };
  }

  async function prefillDecodeMatchesForward(device: Device, tol: number) {
    const { ids } = await goldenCase1();
    const { nope, rope } = await ropeModels(device);
    const N = 30;
    const full = rope.forward(device.fromHost(ids.slice(0, N), [1, N], 'i32'));
    const want = await full.logits.toFloat32();
    const fullNope = await nope.forward(device.fromHost(ids.slice(0, N), [1, N], 'i32')).logits.toFloat32();
    // RoPE is not a no-op: positions > 0 change the logits.
    expect(relErr(want.subarray(5 * V), fullNope.subarray(5 * V))).toBeGreaterThan(1e-3);
    const row = (t: number) => want.subarray(t * V, (t + 1) * V);
    // Two sequences at different positions, so each decode query is rotated at its own position.
    const s = new BatchSession(rope, { maxSequences: 2, maxLength: 64, pageSize: 8 });
    const lens = [11, 4];
    for (const L of lens) expectClose((await s.add(ids.subarray(0, L))).logits, row(L - 1), tol, `prefill ${L}`);
    const pos = [...lens];
    for (let t = 0; t < 8; t++) {
      const logits = await s.step(pos.map((p) => ids[p]));
      for (let b = 0; b < 2; b++) {
        expectClose(logits.subarray(b * V, (b + 1) * V), row(pos[b]), tol, `rope decode, sequence ${b} at ${pos[b]}`);
        pos[b]++;
      }
    }
    s.dispose();
    nope.weights.dispose();
  }

  it('cpu: prefill + batched decode reproduce the full-sequence RoPE logits (1e-4)', async () => {
    await prefillDecodeMatchesForward(cpu, 1e-4);
  });

  it.skipIf(!hasGpu)('WebGPU: the same within 1e-3', async () => {
    await prefillDecodeMatchesForward((await gpuContext())!, 1e-3);
  });
});

describe('generate CLI with several prompts', () => {
  it('--tokens with lists of different lengths: one JSON object per sequence, the tokens of each alone', async () => {
    const prompts = [[72, 105, 33, 32, 116], [1]];
    const file = join(mkdtempSync(join(tmpdir(), 'gen-')), 'prompts.json');
    writeFileSync(file, JSON.stringify(prompts));
    const args = ['generate', '--model', `${FIXTURES}/tiny-kimi`, '--max-tokens', '5', '--greedy', '--backend', 'cpu'];
    const r = await cli(...args, '--tokens', file, '--json', '--stop', '999');
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { sequences: { prompt: number[]; tokens: number[]; stopped: string }[] };
    const model = await loadModel(`${FIXTURES}/tiny-kimi`, cpu);
    for (const [i, p] of prompts.entries()) {
      const alone: number[] = [];
      for await (const t of generate(model, p, undefined, { greedy: true, maxTokens: 5 })) alone.push(t.token);
      expect(got.sequences[i].prompt).toEqual(p);
      expect(got.sequences[i].tokens).toEqual(alone);
      expect(got.sequences[i].stopped).toBe('max_tokens');
    }
    // Streaming text: lines labelled by sequence.
    const s = await cli(...args, '--prompt', 'ab', '--prompt', 'c');
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/^\[0\] /m);
    expect(s.stdout).toMatch(/^\[1\] /m);
    expect(s.stdout).toMatch(/2 sequences, 10 tokens/);
  });
});
