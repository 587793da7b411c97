import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { crossEntropy, linearCrossEntropy } from '../src/kernels/crossEntropy/index.js';
import { crossEntropyReference, linearCrossEntropyReference } from '../src/kernels/crossEntropy/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { centralDiff, expectClose, FIXTURES, gpuContext, hasGpu } from './helpers.js';

function targetsFor(N: number, V: number, rng: Rng, ignoreEvery = 0): Int32Array {
  return Int32Array.from({ length: N }, (_, n) => (ignoreEvery && n % ignoreEvery === 1 ? -100 : rng.int(V)));
}

describe('cross-entropy reference', () => {
  it('uniform logits give log V; one confident correct row gives ~0', () => {
    expect(crossEntropyReference(new Float32Array(10), Int32Array.of(3, 4), 5).loss).toBeCloseTo(Math.log(5), 12);
    expect(crossEntropyReference(Float32Array.of(0, 50, 0), Int32Array.of(1), 3).loss).toBeLessThan(1e-20);
  });

  it('matches central differences; ignored rows add nothing; the mean is over counted rows', () => {
    const [N, V] = [6, 7];
    const rng = new Rng(5);
    const z = rng.normalArray(N * V, 3);
    const t = targetsFor(N, V, rng, 3);
    const r = crossEntropyReference(z, t, V);
    const fd = Float32Array.from(z, (_, i) => centralDiff(() => crossEntropyReference(z, t, V).loss, z, i, 1e-2));
    expectClose(r.dLogits, fd, 1e-3, 'dLogits');
    for (let v = 0; v < V; v++) expect(r.dLogits[1 * V + v]).toBe(0);
    const kept = [0, 2, 3, 5].map(
      (n) => crossEntropyReference(z.subarray(n * V, n * V + V), t.subarray(n, n + 1), V).loss,
    );
    expect(r.loss).toBeCloseTo(kept.reduce((a, b) => a + b) / 4, 6);
  });

  it('all rows ignored: loss 0, zero gradient; a bad target is named', () => {
    const r = crossEntropyReference(new Float32Array(6), Int32Array.of(-1, -1), 3, -1);
    expect(r.loss).toBe(0);
    expect(Array.from(r.dLogits)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(() => crossEntropy(cpu.zeros([2, 3]), cpu.fromHost(Int32Array.of(0, 3), [2], 'i32'))).toThrow(
      /targets\[1\] = 3, expected 0..2 or ignoreIndex -100/,
    );
  });

  it('linear: equals crossEntropy of h W^T with dh = dz W, dW = dz^T h, and matches central differences', () => {
    const [N, D, V] = [5, 4, 9];
    const rng = new Rng(6);
    const h = rng.normalArray(N * D);
    const w = rng.normalArray(V * D);
    const t = targetsFor(N, V, rng, 4);
    const r = linearCrossEntropyReference(h, w, t, { N, D, V });
    const z = new Float32Array(N * V);
    for (let n = 0; n < N; n++)
      for (let v = 0; v < V; v++) {
        let a = 0;
        for (let d = 0; d < D; d++) a += h[n * D + d] * w[v * D + d];
        z[n * V + v] = a;
      }
    expect(r.loss).toBeCloseTo(crossEntropyReference(z, t, V).loss, 6);
    const loss = () => linearCrossEntropyReference(h, w, t, { N, D, V }).loss;
    expectClose(
      r.dh,
      Float32Array.from(h, (_, i) => centralDiff(loss, h, i, 1e-2)),
      1e-3,
      'dh',
    );
    expectClose(
      r.dWeight,
      Float32Array.from(w, (_, i) => centralDiff(loss, w, i, 1e-2)),
      1e-3,
      'dWeight',
    );
  });

  it('cpu backend runs the references', async () => {
    const [N, D, V] = [3, 2, 5];
    const rng = new Rng(7);
    const h = rng.normalArray(N * D);
    const w = rng.normalArray(V * D);
    const t = targetsFor(N, V, rng);
    const out = linearCrossEntropy(cpu.fromHost(h, [N, D]), cpu.fromHost(w, [V, D]), cpu.fromHost(t, [N], 'i32'));
    const ref = linearCrossEntropyReference(h, w, t, { N, D, V });
    expect((await out.loss.read())[0]).toBe(Math.fround(ref.loss));
    expect(Array.from(await out.dWeight.read())).toEqual(Array.from(ref.dWeight));
  });
});

describe.skipIf(!hasGpu)('cross-entropy on WebGPU vs reference', () => {
  // f32 exp/log over <= 1000 terms; relative to max |value|.
  const TOL = 2e-5;
  const shapes: [number, number][] = [
    [1, 1],
    [7, 7],
    [63, 65],
    [65, 1000],
    [3, 300],
  ];
  for (const [N, V] of shapes) {
    it(`N=${N} V=${V}: loss and dLogits (every third row ignored)`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(N * 7 + V);
      const z = rng.normalArray(N * V, 4);
      const t = targetsFor(N, V, rng, 3);
      const ref = crossEntropyReference(z, t, V);
      const out = crossEntropy(gpu.fromHost(z, [N, V]), gpu.fromHost(t, [N], 'i32'));
      expectClose(await out.loss.read(), [ref.loss], TOL, 'loss');
      expectClose(await out.dLogits.read(), ref.dLogits, TOL, 'dLogits');
    });
  }

  it('a custom ignoreIndex, all rows ignored, and an out-of-range target (treated as ignored on the GPU)', async () => {
    const gpu = (await gpuContext())!;
    const [N, V] = [5, 9];
    const rng = new Rng(11);
    const z = rng.normalArray(N * V, 2);
    const t = Int32Array.of(3, 0, 8, 0, 2);
    const ref = crossEntropyReference(z, t, V, 0);
    const out = crossEntropy(gpu.fromHost(z, [N, V]), gpu.fromHost(t, [N], 'i32'), { ignoreIndex: 0 });
    expectClose(await out.loss.read(), [ref.loss], TOL, 'loss');
    expectClose(await out.dLogits.read(), ref.dLogits, TOL, 'dLogits');
    const none = crossEntropy(gpu.fromHost(z, [N, V]), gpu.fromHost(new Int32Array(N).fill(-100), [N], 'i32'));
    expect(Array.from(await none.loss.read())).toEqual([0]);
    expect((await none.dLogits.read()).every((x) => x === 0)).toBe(true);
    const bad = Int32Array.of(3, 99, 8, -7, 2);
    const badOut = crossEntropy(gpu.fromHost(z, [N, V]), gpu.fromHost(bad, [N], 'i32'));
    const asIgnored = crossEntropyReference(z, Int32Array.of(3, -100, 8, -100, 2), V);
    expectClose(await badOut.loss.read(), [asIgnored.loss], TOL, 'loss with bad targets');
    expectClose(await badOut.dLogits.read(), asIgnored.dLogits, TOL, 'dLogits with bad targets');
  });

  const linear: [number, number, number, number | undefined][] = [
    [1, 8, 7, undefined],
    [65, 24, 37, undefined],
    [65, 24, 37, 8],
    [130, 16, 65, 64],
  ];
  for (const [N, D, V, chunkRows] of linear) {
    it(`linear N=${N} D=${D} V=${V} chunkRows=${chunkRows ?? 'default'}: loss, dh, dWeight`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(N + D + V);
      const h = rng.normalArray(N * D);
      const w = rng.normalArray(V * D, 0.5);
      const t = targetsFor(N, V, rng, 5);
      const ref = linearCrossEntropyReference(h, w, t, { N, D, V });
      const out = linearCrossEntropy(gpu.fromHost(h, [N, D]), gpu.fromHost(w, [V, D]), gpu.fromHost(t, [N], 'i32'), {
        chunkRows,
      });
      expectClose(await out.loss.read(), [ref.loss], 1e-5, 'loss');
      expectClose(await out.dh.read(), ref.dh, 1e-4, 'dh');
      expectClose(await out.dWeight.read(), ref.dWeight, 1e-4, 'dWeight');
    });
  }
});

describe.skipIf(!hasGpu)('linear cross-entropy with a bf16 LM head', () => {
  it('N=65 D=24 V=37: WebGPU and cpu agree with the reference on the bf16 values', async () => {
    const gpu = (await gpuContext())!;
    const [N, D, V] = [65, 24, 37];
    const rng = new Rng(21);
    const h = rng.normalArray(N * D);
    const bits = f32ArrayToBf16(rng.normalArray(V * D, 0.5));
    const t = targetsFor(N, V, rng, 5);
    const ref = linearCrossEntropyReference(h, bf16ArrayToF32(bits), t, { N, D, V });
    for (const d of [cpu, gpu]) {
      const out = linearCrossEntropy(
        d.fromHost(h, [N, D]),
        d.fromHost(bits, [V, D], 'bf16'),
        d.fromHost(t, [N], 'i32'),
      );
      expectClose(await out.loss.read(), [ref.loss], 1e-5, `${d.backend} loss`);
      expectClose(await out.dh.read(), ref.dh, 1e-4, `${d.backend} dh`);
      expectClose(await out.dWeight.read(), ref.dWeight, 1e-4, `${d.backend} dWeight`);
    }
  });
});

describe('cross-entropy against the golden tiny-kimi loss', () => {
  // caseN.loss is the mean next-token cross-entropy of caseN.logits over all B*(T-1) positions, computed in
  // float64 by the independent implementation: here every row's target is the next token, and the last
  // position of each sequence is ignoreIndex (so it also tests the mean over counted rows).
  for (const c of ['case0', 'case1']) {
    it(`${c}: cpu and WebGPU within 1e-5 of the golden loss`, async () => {
      const f = await openSafetensors(`${FIXTURES}/golden/tiny-kimi-golden.safetensors`);
      const get = async (name: string) => {
        if (!f.has(name)) throw new Error(`golden file lacks ${name}`);
        return (await f.readHost(name)).data;
      };
      const ids = (await get(`${c}.input_ids`)) as Int32Array;
      const logits = (await get(`${c}.logits`)) as Float32Array;
      const golden = ((await get(`${c}.loss`)) as Float32Array)[0];
      await f.close();
      const V = 256;
      const B = c === 'case0' ? 2 : 1;
      const T = ids.length / B;
      const targets = Int32Array.from(ids, (_, i) => (i % T === T - 1 ? -100 : ids[i + 1]));
      const devices = [cpu, ...(hasGpu ? [(await gpuContext())!] : [])];
      for (const d of devices) {
        const out = crossEntropy(d.fromHost(logits, [B * T, V]), d.fromHost(targets, [B * T], 'i32'));
        const loss = (await out.loss.read())[0];
        expect(Math.abs(loss - golden) / golden, `${d.backend}: ${loss} vs ${golden}`).toBeLessThan(1e-5);
      }
    });
  }
});
