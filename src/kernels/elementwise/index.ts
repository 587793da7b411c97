/**
 * Elementwise ops on f32 activations (operands may also be bf16, e.g. a bf16 bias), output f32.
 * Every op here is one dispatch of the generic kernel in elementwise.wgsl.ts, so a fused chain such as
 * silu(gate) * up costs one read of each operand and one write, and each distinct expression compiles
 * once. `defineElementwise` makes new fused ops from a WGSL expression and its reference.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import type { FloatDType } from '../wgslLib.js';
import {
  ELEMENTWISE_WG,
  type ElementwiseVariant,
  elementwiseKey,
  elementwiseVec4,
  elementwiseWgsl,
} from './elementwise.wgsl.js';
import {
  elementwiseReference,
  type ScalarFn,
  sigmoid as sigmoidRef,
  silu as siluRef,
  softplus as softplusRef,
} from './reference.js';

export interface ElementwiseOp {
  /** Shown in errors and GPU debuggers. */
  name: string;
  /** Number of tensor operands (1-4), named a, b, c, d in `wgsl`. */
  arity: 1 | 2 | 3 | 4;
  /** WGSL f32 expression in a, b, c, d and the scalar s; may call silu, sigmoid, softplus, log1p. */
  wgsl: string;
  /** The same function in plain TS: the cpu path and the tests' oracle. */
  ref: ScalarFn;
}

export function defineElementwise(op: ElementwiseOp): ElementwiseOp {
  return op;
}

export const ELEMENTWISE = {
  silu: defineElementwise({ name: 'silu', arity: 1, wgsl: 'silu(a)', ref: (a) => siluRef(a) }),
  sigmoid: defineElementwise({ name: 'sigmoid', arity: 1, wgsl: 'sigmoid(a)', ref: (a) => sigmoidRef(a) }),
  softplus: defineElementwise({ name: 'softplus', arity: 1, wgsl: 'softplus(a)', ref: (a) => softplusRef(a) }),
  exp: defineElementwise({ name: 'exp', arity: 1, wgsl: 'exp(a)', ref: (a) => Math.exp(a) }),
  neg: defineElementwise({ name: 'neg', arity: 1, wgsl: '-a', ref: (a) => -a }),
  scale: defineElementwise({ name: 'scale', arity: 1, wgsl: 'a * s', ref: (a, _b, _c, _d, s) => a * s }),
  add: defineElementwise({ name: 'add', arity: 2, wgsl: 'a + b', ref: (a, b) => a + b }),
  mul: defineElementwise({ name: 'mul', arity: 2, wgsl: 'a * b', ref: (a, b) => a * b }),
  swiglu: defineElementwise({ name: 'swiglu', arity: 2, wgsl: 'silu(a) * b', ref: (a, b) => siluRef(a) * b }),
  sigmoidMul: defineElementwise({
    name: 'sigmoidMul',
    arity: 2,
    wgsl: 'a * sigmoid(b)',
    ref: (a, b) => a * sigmoidRef(b),
  }),
} as const;

/** True when `small`'s shape is the trailing dims of `big`'s (so it repeats over the leading ones). */
function isTrailing(small: readonly number[], big: readonly number[]): boolean {
  if (small.length > big.length) return false;
  const off = big.length - small.length;
  return small.every((d, i) => d === big[off + i]);
}

/** true (default): f32 operands of sizes divisible by 4 take the vec4 kernel; false: always scalar (A/B). */
let vec4Enabled = true;
export function setElementwiseVec4(on: boolean): void {
  vec4Enabled = on;
}

/**
 * Apply `op` to `inputs`. The output has the first operand's shape; each later operand has that shape
 * or its trailing dims (broadcast over the leading ones, e.g. [N, D] with [D]).
 */
export function elementwise(op: ElementwiseOp, inputs: readonly Tensor[], s = 0): Tensor {
  const where = `elementwise.${op.name}`;
  if (inputs.length !== op.arity) throw new Error(`${where}: got ${inputs.length} operands, expected ${op.arity}`);
  const device = deviceOf(where, ...inputs);
  const names = ['a', 'b', 'c', 'd'];
  const shape = inputs[0].shape;
  const broadcast = inputs.map((t, k) => {
    expectDType(where, `operand ${names[k]}`, t, ['f32', 'bf16']);
    if (t.numel === inputs[0].numel && t.shape.length === shape.length && isTrailing(t.shape, shape)) return false;
    if (k > 0 && isTrailing(t.shape, shape)) return true;
    throw new ShapeError(
      `${where}: operand ${names[k]} has shape ${formatShape(t.shape)}, expected ${formatShape(shape)} or trailing dims of it`,
    );
  });
  const gpu = asGpu(device);
  if (!gpu) {
    return cpu.fromHost(
      elementwiseReference(
        op.ref,
        inputs.map((t) => hostF32(t)),
        s,
      ),
      shape,
    );
  }
  const dense = inputs.map((t) => contiguous(t));
  const out = gpu.empty(shape);
  const n = out.numel;
  const dtypes = inputs.map((t) => t.dtype as FloatDType);
  const sizes = [0, 1, 2, 3].map((k) => Math.max(1, inputs[k]?.numel ?? 1));
  const vec4 = vec4Enabled && elementwiseVec4(dtypes, sizes.slice(0, inputs.length), n);
  const v: ElementwiseVariant = { expr: op.wgsl, dtypes, broadcast, vec4 };
  if (n > 0) {
    gpu.dispatch({
      kernel: { name: `elementwise_${op.name}`, key: elementwiseKey(v), code: () => elementwiseWgsl(v) },
      tensors: [...dense, out],
      params: new Params()
        .u32(n)
        .f32(s)
        .u32(0, 0, ...sizes),
      workgroups: grid1d(vec4 ? n / 4 : n, ELEMENTWISE_WG),
    });
  }
  for (const t of dense) t.dispose();
  return out;
}

export const silu = (x: Tensor): Tensor => elementwise(ELEMENTWISE.silu, [x]);
export const sigmoid = (x: Tensor): Tensor => elementwise(ELEMENTWISE.sigmoid, [x]);
/** log(1 + e^x), x itself above 20. */
export const softplus = (x: Tensor): Tensor => elementwise(ELEMENTWISE.softplus, [x]);
export const exp = (x: Tensor): Tensor => elementwise(ELEMENTWISE.exp, [x]);
export const neg = (x: Tensor): Tensor => elementwise(ELEMENTWISE.neg, [x]);
export const scale = (x: Tensor, s: number): Tensor => elementwise(ELEMENTWISE.scale, [x], s);

/** a + b; either operand may be the trailing-dims one (commutative). */
export function add(a: Tensor, b: Tensor): Tensor {
  return elementwise(ELEMENTWISE.add, b.numel > a.numel ? [b, a] : [a, b]);
}

/** a * b; either operand may be the trailing-dims one (commutative). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return elementwise(ELEMENTWISE.mul, b.numel > a.numel ? [b, a] : [a, b]);
}

/** silu(gate) * up, the SwiGLU MLP's activation, in one pass. */
export const swiglu = (gate: Tensor, up: Tensor): Tensor => elementwise(ELEMENTWISE.swiglu, [gate, up]);

/** x * sigmoid(g), the KDA output gate, in one pass. */
export const sigmoidMul = (x: Tensor, g: Tensor): Tensor => elementwise(ELEMENTWISE.sigmoidMul, [x, g]);
