import { afterAll, describe, expect, it } from 'vitest';
import {
  add,
  defineElementwise,
  ELEMENTWISE,
  type ElementwiseOp,
  elementwise,
  exp,
  mul,
  neg,
  scale,
  sigmoid,
  setElementwiseVec4,
  sigmoidMul,
  silu,
  softplus,
  swiglu,
} from '../src/kernels/elementwise/index.js';
import { elementwiseReference } from '../src/kernels/elementwise/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16, toF32 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 kernels against the f64 reference rounded to f32: exp/log on the GPU are accurate to a few ulp,
// so 2e-6 of the largest |value| leaves room without hiding a wrong formula.
const TOL = 2e-6;

async function values(t: { read(): Promise<unknown>; toFloat32(): Promise<Float32Array> }): Promise<number[]> {
  return Array.from(await t.toFloat32());
}

describe('elementwise on cpu (hand-computed values)', () => {
  it('unary activations', async () => {
    const x = cpu.fromHost(new Float32Array([0, 1, -1, 30, -30, 20.5]), [6]);
    const s = await values(sigmoid(x));
    expect(s[0]).toBe(0.5);
    expect(s[1]).toBeCloseTo(0.7310585786, 7);
    expect(s[2]).toBeCloseTo(0.2689414214, 7);
    expect(s[4]).toBeCloseTo(9.357622968840175e-14, 20);
    const si = await values(silu(x));
    expect(si[1]).toBeCloseTo(0.7310585786, 7);
    expect(si[2]).toBeCloseTo(-0.2689414214, 7);
    const sp = await values(softplus(x));
    expect(sp[0]).toBeCloseTo(Math.LN2, 7);
    expect(sp[1]).toBeCloseTo(1.3132616875, 6);
    expect(sp[3]).toBe(30);
    expect(sp[5]).toBe(20.5);
    expect(sp[4]).toBeCloseTo(9.357622968840175e-14, 20);
    expect((await values(exp(x))).slice(0, 3)).toEqual([1, Math.fround(Math.E), Math.fround(1 / Math.E)]);
    expect(await values(neg(x))).toEqual([-0, -1, 1, -30, 30, -20.5]);
    expect(await values(scale(x, 0.5))).toEqual([0, 0.5, -0.5, 15, -15, 10.25]);
  });

  it('binary ops, fused forms and trailing-dims broadcasting', async () => {
    const a = cpu.fromHost(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const b = cpu.fromHost(new Float32Array([10, 20, 30]), [3]);
    expect(await values(add(a, b))).toEqual([11, 22, 33, 14, 25, 36]);
    expect(await values(add(b, a))).toEqual([11, 22, 33, 14, 25, 36]);
    expect(await values(mul(a, b))).toEqual([10, 40, 90, 40, 100, 180]);
    expect(await values(mul(a, a))).toEqual([1, 4, 9, 16, 25, 36]);
    const g = cpu.fromHost(new Float32Array([0, 0, 0, 0, 0, 0]), [2, 3]);
    expect(await values(sigmoidMul(a, g))).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    expect(await values(swiglu(g, a))).toEqual([0, 0, 0, 0, 0, 0]);
    const sw = await values(swiglu(a, b));
    expect(sw[0]).toBeCloseTo(0.7310585786 * 10, 5);
    const bf = cpu.fromHost(f32ArrayToBf16([1, 2, 3]), [3], 'bf16');
    expect(await values(mul(a, bf))).toEqual([1, 4, 9, 4, 10, 18]);
  });

  it('rejects shapes that do not broadcast and non-float dtypes', () => {
    const a = cpu.fromHost(new Float32Array(6), [2, 3]);
    expect(() => add(a, cpu.fromHost(new Float32Array(2), [2]))).toThrow(
      /operand b has shape \[2\], expected \[2, 3\]/,
    );
    expect(() => swiglu(cpu.fromHost(new Float32Array(3), [3]), a)).toThrow(
      /operand b has shape \[2, 3\], expected \[3\]/,
    );
    expect(() => silu(cpu.fromHost(new Int32Array(3), [3], 'i32'))).toThrow(/dtype i32/);
  });
});

describe('elementwise on WebGPU vs the reference', () => {
  const D = 13;
  const unary: ElementwiseOp[] = [
    ELEMENTWISE.silu,
    ELEMENTWISE.sigmoid,
    ELEMENTWISE.softplus,
    ELEMENTWISE.exp,
    ELEMENTWISE.neg,
    ELEMENTWISE.scale,
  ];
  const binary: ElementwiseOp[] = [ELEMENTWISE.add, ELEMENTWISE.mul, ELEMENTWISE.swiglu, ELEMENTWISE.sigmoidMul];
  for (const n of AWKWARD) {
    it.skipIf(!hasGpu)(`every op, [${n}, ${D}] (broadcast [${D}], bf16 operand)`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(n + 3);
      // Wide range: sigmoid/softplus tails and softplus's x > 20 branch are all exercised.
      const x = rng.normalArray(n * D).map((v) => v * 12);
      const y = rng.normalArray(n * D);
      const r = rng.normalArray(D);
      const xs = [gpu.fromHost(x, [n, D]), gpu.fromHost(y, [n, D]), gpu.fromHost(r, [D])];
      for (const op of unary) {
        const inp = op === ELEMENTWISE.exp ? x.map((v) => v / 4) : x;
        const t = gpu.fromHost(inp, [n, D]);
        const got = await elementwise(op, [t], 0.37).toFloat32();
        expectClose(got, elementwiseReference(op.ref, [inp], 0.37), TOL, op.name);
        t.dispose();
      }
      for (const op of binary) {
        expectClose(
          await elementwise(op, [xs[0], xs[1]]).toFloat32(),
          elementwiseReference(op.ref, [x, y]),
          TOL,
          op.name,
        );
        expectClose(
          await elementwise(op, [xs[0], xs[2]]).toFloat32(),
          elementwiseReference(op.ref, [x, r]),
          TOL,
          `${op.name} [${D}]`,
        );
      }
      // A bf16 operand (e.g. a weight): exact widening, so same tolerance against the widened values.
      const rb = f32ArrayToBf16(r);
      const tb = gpu.fromHost(rb, [D], 'bf16');
      expectClose(
        await mul(xs[0], tb).toFloat32(),
        elementwiseReference(ELEMENTWISE.mul.ref, [x, toF32('bf16', rb)]),
        TOL,
        'mul bf16',
      );
      // A non-contiguous view goes through contiguous().
      const tv = gpu.fromHost(x, [D, n]).transpose();
      const cv = cpu.fromHost(x, [D, n]).transpose();
      expectClose(await silu(tv).toFloat32(), await silu(cv).toFloat32(), TOL, 'silu of a transposed view');
      // A user-defined fused op with three operands.
      const fma = defineElementwise({
        name: 'fma',
        arity: 3,
        wgsl: 'a * b + c * s',
        ref: (a, b, c, _d, s) => a * b + c * s,
      });
      expectClose(
        await elementwise(fma, [xs[0], xs[1], xs[2]], 2).toFloat32(),
        elementwiseReference(fma.ref, [x, y, r], 2),
        TOL,
        'fma',
      );
      for (const t of [...xs, tb]) t.dispose();
    });
  }
});

describe('elementwise vec4 form on WebGPU (sizes divisible by 4) vs the reference and the scalar form', () => {
  afterAll(() => setElementwiseVec4(true));
  const D = 12;
  const ops: ElementwiseOp[] = [ELEMENTWISE.softplus, ELEMENTWISE.scale, ELEMENTWISE.add, ELEMENTWISE.sigmoidMul];
  for (const n of [1, 7, 65]) {
    it.skipIf(!hasGpu)(`[${n}, 3, 4], broadcast [3, 4] and [4]`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(n + 11);
      const x = rng.normalArray(n * D).map((v) => v * 12);
      const y = rng.normalArray(n * D);
      const r = rng.normalArray(D);
      const q = rng.normalArray(4);
      const xs = [
        gpu.fromHost(x, [n, 3, 4]),
        gpu.fromHost(y, [n, 3, 4]),
        gpu.fromHost(r, [3, 4]),
        gpu.fromHost(q, [4]),
      ];
      for (const op of ops) {
        for (const [k, other] of [
          [1, y],
          [2, r],
          [3, q],
        ] as const) {
          const ins = op.arity === 1 ? [xs[0]] : [xs[0], xs[k]];
          const host = op.arity === 1 ? [x] : [x, other];
          setElementwiseVec4(false);
          const scalar = await elementwise(op, ins, 0.37).toFloat32();
          setElementwiseVec4(true);
          const v4 = await elementwise(op, ins, 0.37).toFloat32();
          expectClose(v4, elementwiseReference(op.ref, host, 0.37), TOL, `${op.name} with operand ${k}`);
          expectClose(v4, scalar, TOL, `${op.name} vec4 vs scalar`);
        }
      }
      for (const t of xs) t.dispose();
    });
  }
});

describe('elementwise numerics on WebGPU', () => {
  it.skipIf(!hasGpu)('softplus and sigmoid keep relative accuracy in the far tails', async () => {
    const gpu = (await gpuContext())!;
    const x = Float32Array.from({ length: 61 }, (_, i) => -40 + i * 0.5); // -40 .. -10
    const t = gpu.fromHost(x, [61]);
    for (const op of [ELEMENTWISE.softplus, ELEMENTWISE.sigmoid]) {
      const got = await elementwise(op, [t]).toFloat32();
      for (let i = 0; i < x.length; i++) {
        const want = op.ref(x[i], 0, 0, 0, 0);
        expect(Math.abs(got[i] - want) / want, `${op.name}(${x[i]})`).toBeLessThan(1e-5);
      }
    }
    t.dispose();
  });
});
