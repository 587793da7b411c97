/**
 * Gradients of every differentiable op wrapper (src/autograd/ops.ts) by central finite differences on
 * the cpu backend, through the tape: the check covers the wrapper's recording, the view bookkeeping and
 * the backward function together.
 *
 * Tolerance: the forward runs in f32, so a central difference with eps = 1e-3 carries a rounding error of
 * about 1e-7 * |L| / 1e-3 plus an O(eps^2) truncation term. Each checked element must be within 1e-2 of
 * the max |analytic gradient| of that input (relative), on a few sampled elements per input.
 */
import { describe, expect, it } from 'vitest';
import * as op from '../src/autograd/ops.js';
import { noGrad, Tape, withTape } from '../src/autograd/tape.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { ROUTER_BASE } from './helpers.js';

const EPS = 1e-3;
const TOL = 1e-2;

interface Input {
  shape: number[];
  /** Float data (default: normal) or integer ids below `ids`. */
  data?: Float32Array;
  ids?: number;
  /** Do not check this input's gradient (e.g. a value the op is not smooth in). */
  skip?: boolean;
}

function makeInputs(inputs: Input[], rng: Rng): (Float32Array | Int32Array)[] {
  return inputs.map((i) => {
    const n = i.shape.reduce((a, b) => a * b, 1);
    if (i.ids !== undefined) return Int32Array.from({ length: n }, () => rng.int(i.ids!));
    return i.data ?? rng.normalArray(n);
  });
}

function toTensors(inputs: Input[], host: (Float32Array | Int32Array)[]): Tensor[] {
  return host.map((h, k) => cpu.fromHost(h, inputs[k].shape, inputs[k].ids !== undefined ? 'i32' : 'f32'));
}

/** sum(fn(xs) * r) in f64. */
async function objective(fn: (xs: Tensor[]) => Tensor, xs: Tensor[], r: Float32Array): Promise<number> {
  const y = await noGrad(() => fn(xs)).toFloat32();
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * r[i];
  return s;
}

async function gradcheck(inputs: Input[], fn: (xs: Tensor[]) => Tensor, seed = 1, samples = 8): Promise<void> {
  const rng = new Rng(seed);
  const host = makeInputs(inputs, rng);
  const xs = toTensors(inputs, host);
  const tape = new Tape();
  const y = withTape(tape, () => fn(xs));
  const r = rng.normalArray(y.numel);
  const leaves = tape.backward(y, cpu.fromHost(r, y.shape));
  expect(tape.size, 'every node ran and released its saved tensors').toBe(0);
  for (let k = 0; k < inputs.length; k++) {
    if (inputs[k].ids !== undefined || inputs[k].skip) continue;
    const g = leaves.get(xs[k].id);
    expect(g, `input ${k} received a gradient`).toBeDefined();
    expect(g!.shape).toEqual(inputs[k].shape);
    const an = await g!.toFloat32();
    const scale = Math.max(...Array.from(an, Math.abs), 1e-6);
    const h = host[k] as Float32Array;
    for (let s = 0; s < Math.min(samples, h.length); s++) {
      const j = s === 0 ? 0 : s === 1 ? h.length - 1 : rng.int(h.length);
      const keep = h[j];
      const at = async (v: number) => {
        h[j] = v;
        return objective(fn, toTensors(inputs, host), r);
      };
      const fd = ((await at(keep + EPS)) - (await at(keep - EPS))) / (2 * EPS);
      h[j] = keep;
      expect(
        Math.abs(fd - an[j]) / scale,
        `input ${k} element ${j}: finite difference ${fd} vs analytic ${an[j]}`,
      ).toBeLessThan(TOL);
    }
  }
}

describe('finite-difference gradients of the op wrappers (cpu)', () => {
  it('linear: x [2, 3, 7] @ W^T, W [5, 7]', async () => {
    await gradcheck([{ shape: [2, 3, 7] }, { shape: [5, 7] }], ([x, w]) => op.linear(x, w));
  });
  it('add with a trailing-dims operand (bias [7] over [3, 7]), both orders', async () => {
    await gradcheck([{ shape: [3, 7] }, { shape: [7] }], ([a, b]) => op.add(a, b));
    await gradcheck([{ shape: [7] }, { shape: [3, 7] }], ([a, b]) => op.add(a, b));
  });
  it('swiglu, silu, mul, scale, sigmoidMul', async () => {
    await gradcheck([{ shape: [4, 9] }, { shape: [4, 9] }], ([a, b]) => op.swiglu(a, b));
    await gradcheck([{ shape: [13] }], ([a]) => op.silu(a));
    await gradcheck([{ shape: [3, 5] }, { shape: [3, 5] }], ([a, b]) => op.mul(a, b));
    await gradcheck([{ shape: [6] }], ([a]) => op.scale(a, -2.5));
    await gradcheck([{ shape: [2, 7] }, { shape: [2, 7] }], ([a, b]) => op.sigmoidMul(a, b));
  });
  it('rmsnorm, plain and with the fused sigmoid gate', async () => {
    await gradcheck([{ shape: [3, 7] }, { shape: [7] }], ([x, w]) => op.rmsnorm(x, w, 1e-6));
    await gradcheck([{ shape: [2, 2, 5] }, { shape: [5] }, { shape: [2, 2, 5] }], ([x, w, g]) =>
      op.rmsnorm(x, w, 1e-5, { gate: g }),
    );
  });
  it('embedding (repeated ids accumulate into one row)', async () => {
    await gradcheck([{ shape: [7, 4] }, { shape: [2, 6], ids: 7 }], ([t, ids]) => op.embedding(t, ids), 3, 12);
  });
  it('causal depthwise conv1d, with and without silu', async () => {
    for (const activation of ['silu', 'none'] as const) {
      await gradcheck(
        [{ shape: [2, 9, 5] }, { shape: [5, 1, 4] }],
        ([x, w]) => op.causalConv1d(x, w, { activation }).y,
      );
    }
    await gradcheck(
      [{ shape: [6, 3] }, { shape: [3, 1, 2] }],
      ([x, w]) => op.causalConv1d(x, w, { activation: 'silu' }).y,
    );
  });
  it('views: narrow, select, unsqueeze + expand, reshape, contiguous, concatLast', async () => {
    await gradcheck([{ shape: [2, 3, 8] }], ([x]) => op.contiguous(op.narrow(x, 2, 3, 4)));
    await gradcheck([{ shape: [2, 3, 8] }], ([x]) => op.contiguous(op.narrow(x, 1, 1, 2)));
    await gradcheck([{ shape: [3, 4, 2] }], ([x]) => op.contiguous(op.select(x, 1, 2)));
    await gradcheck([{ shape: [2, 3, 4] }], ([x]) => op.contiguous(op.expand(op.unsqueeze(x, 2), [2, 3, 5, 4])));
    await gradcheck([{ shape: [2, 6] }], ([x]) => op.reshape(x, [3, 4]));
    await gradcheck([{ shape: [2, 3, 4] }, { shape: [2, 3, 1] }], ([a, b]) =>
      op.concatLast(op.narrow(a, 2, 1, 2), op.expand(b, [2, 3, 3])),
    );
  });
  it('rope (inverse rotation as backward)', async () => {
    await gradcheck([{ shape: [1, 5, 2, 4] }], ([x]) => op.rope(x, 0, 10000));
  });
  it('causal attention', async () => {
    await gradcheck([{ shape: [1, 6, 2, 4] }, { shape: [1, 6, 2, 4] }, { shape: [1, 6, 2, 3] }], ([q, k, v]) =>
      op.attention(q, k, v, { causal: true, scale: 0.5 }),
    );
  });
  it('KDA layer (through l2norm, gate and sigmoid)', async () => {
    const H = 2;
    const K = 4;
    await gradcheck(
      [
        { shape: [1, 5, H, K] },
        { shape: [1, 5, H, K] },
        { shape: [1, 5, H, K] },
        { shape: [1, 5, H, K] },
        { shape: [1, 5, H] },
        { shape: [H], data: new Float32Array([0.1, -0.3]) },
        { shape: [H * K] },
      ],
      ([q, k, v, g, b, a, dt]) => op.kdaLayer(q, k, v, g, b, a, dt, { outputFinalState: false }).o,
    );
  });
  it('KDA layer with an initial state in and the final state out (dS0, dS)', async () => {
    const [H, K, V] = [2, 4, 2];
    await gradcheck(
      [
        { shape: [1, 4, H, K] },
        { shape: [1, 4, H, K] },
        { shape: [1, 4, H, V] },
        { shape: [1, 4, H, K] },
        { shape: [1, 4, H] },
        { shape: [H], data: new Float32Array([0.2, -0.1]) },
        { shape: [H * K] },
        { shape: [1, H, K, V] },
      ],
      ([q, k, v, g, b, a, dt, S0]) => {
        const r = op.kdaLayer(q, k, v, g, b, a, dt, { initialState: S0, outputFinalState: true });
        return op.concatLast(op.reshape(r.o, [r.o.numel]), op.reshape(r.finalState!, [r.finalState!.numel]));
      },
      7,
    );
  });
  it('MoE: experts and router weights (selection held fixed)', async () => {
    const cfg = { ...ROUTER_BASE, numExperts: 4, topK: 2, scaling: 1.5 };
    // Logits far apart, so the +-eps perturbations never change which experts are chosen.
    const logits = Float32Array.from({ length: 3 * 4 }, (_, i) => ((i * 7) % 12) * 0.4 - 2);
    await gradcheck(
      [
        { shape: [3, 5] },
        { shape: [3, 4], data: logits },
        { shape: [4, 6, 5] },
        { shape: [4, 6, 5] },
        { shape: [4, 5, 6] },
      ],
      ([x, l, w1, w3, w2]) => op.experts(x, op.route(l, undefined, cfg), { w1, w3, w2 }).y,
    );
  });
  it('cross-entropy losses (mean over targets; ignored rows add nothing)', async () => {
    await gradcheck([{ shape: [4, 9] }, { shape: [4], ids: 9 }], ([l, t]) => op.crossEntropy(l, t));
    await gradcheck([{ shape: [5, 3] }, { shape: [7, 3] }, { shape: [5], ids: 7 }], ([h, w, t]) =>
      op.linearCrossEntropy(h, w, t),
    );
  });
});

describe('the tape', () => {
  it('accumulates the gradient of a tensor used twice (x + x, and a residual read by two branches)', async () => {
    const x = cpu.fromHost(new Float32Array([1, -2, 3]), [3]);
    const w = cpu.fromHost(new Float32Array([0.5, 0.25, 2]), [3]);
    const tape = new Tape();
    // y = x + x * w  ->  dy/dx = 1 + w
    const y = withTape(tape, () => op.add(op.add(x, op.mul(x, w)), x));
    const g = tape.backward(y, cpu.fromHost(new Float32Array([1, 1, 1]), [3]));
    expect(Array.from(await g.get(x.id)!.toFloat32())).toEqual([2.5, 2.25, 4]);
    expect(Array.from(await g.get(w.id)!.toFloat32())).toEqual([1, -2, 3]);
  });

  it('a checkpointed block gives the same gradients as the recorded one, parameters read by closure included', async () => {
    const rng = new Rng(5);
    const x = cpu.fromHost(rng.normalArray(12), [3, 4]);
    const w = cpu.fromHost(rng.normalArray(20), [5, 4]);
    const n = cpu.fromHost(rng.normalArray(5), [5]);
    const block = (xi: Tensor) => op.rmsnorm(op.silu(op.linear(xi, w)), n, 1e-6);
    const run = async (ckpt: boolean) => {
      const tape = new Tape({ leaves: [x, w, n] });
      const y = withTape(tape, () => (ckpt ? tape.checkpoint('block', [x], block) : block(x)));
      const g = tape.backward(y, cpu.fromHost(new Float32Array(15).fill(1), [3, 5]));
      return Promise.all([x, w, n].map((t) => g.get(t.id)!.toFloat32()));
    };
    const [plain, ckpt] = [await run(false), await run(true)];
    for (let i = 0; i < 3; i++) expect(Array.from(ckpt[i])).toEqual(Array.from(plain[i]));
  });

  it('keeps saved tensors alive past the scope that made them, and frees them after backward', async () => {
    const { scope } = await import('../src/tensor/scope.js');
    const x = cpu.fromHost(new Float32Array([1, 2]), [2]);
    const tape = new Tape();
    const y = scope(() => withTape(tape, () => op.silu(op.scale(op.silu(x), 3))));
    const g = tape.backward(y, cpu.fromHost(new Float32Array([1, 1]), [2]));
    expect(g.get(x.id)!.isDisposed).toBe(false);
    expect(tape.size).toBe(0);
    expect(() => tape.backward(y, y)).toThrow(/already run/);
  });

  it('with known leaves, rejects an input made outside the wrappers (a gradient would be lost)', () => {
    const w = cpu.fromHost(new Float32Array(6), [2, 3]);
    const tape = new Tape({ leaves: [w] });
    expect(() => withTape(tape, () => op.linear(w.reshape([3, 2]), w.transpose()))).toThrow(
      /input Tensor\(f32\[3, 2\] on cpu\) of 'linear' was not made by a differentiable op/,
    );
    tape.dispose();
  });

  it('records nothing without an active tape', () => {
    const tape = new Tape();
    const x = cpu.fromHost(new Float32Array([1]), [1]);
    op.silu(x);
    expect(tape.size).toBe(0);
  });
});

describe('the tape with hand-written nodes', () => {
  it('a backward that passes its gradient straight through, to two inputs, keeps both gradients alive', async () => {
    const a = cpu.fromHost(new Float32Array([1, 2]), [2]);
    const b = cpu.fromHost(new Float32Array([3, 4]), [2]);
    const tape = new Tape();
    const y = withTape(tape, () => {
      const out = op.add(a, b);
      // identity node whose backward hands dy itself to both of its inputs
      const id = out.alias();
      tape.record('identity2', [out, out], [id], ([dy]) => [dy, dy], []);
      // and one that hands dy to a single input
      const id2 = id.alias();
      tape.record('identity', [id], [id2], ([dy]) => [dy], []);
      return id2;
    });
    const g = tape.backward(y, cpu.fromHost(new Float32Array([1, 1]), [2]));
    expect(Array.from(await g.get(a.id)!.toFloat32())).toEqual([2, 2]);
    expect(Array.from(await g.get(b.id)!.toFloat32())).toEqual([2, 2]);
  });
});
