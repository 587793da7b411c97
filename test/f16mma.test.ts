import { describe, expect, it } from 'vitest';
import { acquireOptions } from '../src/cli/shared.js';
import { DAWN_TOGGLES, dawnFlagsOf, parseDawnToggles } from '../src/gpu/acquire.js';
import { C32, F16_MMA_HEAD, f16Round, ld16, st32 } from '../src/kernels/f16mma.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu } from './helpers.js';

/** An f16 value from its 16 bits. */
function f16FromBits(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

describe('f16Round: the f16 kernels references round as WGSL f16(x) does', () => {
  it('ties to even, subnormals, the largest finite value and overflow', () => {
    expect(f16Round(1)).toBe(1);
    expect(f16Round(1 + 2 ** -11)).toBe(1); // a tie: down to the even 1
    expect(f16Round(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9); // a tie: up to the even mantissa
    expect(f16Round(1 + 2 ** -11 + 2 ** -20)).toBe(1 + 2 ** -10); // past the tie
    expect(f16Round(0.1)).toBe(0.0999755859375);
    expect(f16Round(-2.71)).toBe(-2.7109375);
    expect(f16Round(65504)).toBe(65504);
    expect(f16Round(65519)).toBe(65504);
    expect(f16Round(65520)).toBe(Number.POSITIVE_INFINITY);
    expect(f16Round(-1e6)).toBe(Number.NEGATIVE_INFINITY);
    expect(f16Round(2 ** -24)).toBe(2 ** -24); // the smallest subnormal
    expect(f16Round(2 ** -25)).toBe(0); // a tie between 0 and 2^-24: to the even 0
    expect(f16Round(1.5 * 2 ** -25)).toBe(2 ** -24);
    expect(f16Round(3 * 2 ** -16)).toBe(3 * 2 ** -16); // subnormal, exact
    expect(f16Round(0)).toBe(0);
    expect(Number.isNaN(f16Round(Number.NaN))).toBe(true);
  });

  // The f16 bits are stored and decoded here: a conversion there and back inside the shader is folded away by
  // lavapipe's compiler (it returned every input unchanged).
  it.skipIf(!hasGpu)('equals the GPU f32 -> f16 conversion (pack2x16float) over 20,000 values', async () => {
    const gpu = (await gpuContext())!;
    const rng = new Rng(11);
    const n = 20000;
    // Magnitudes from 2^-30 to 2^15.9 (inside f16's finite range: WGSL leaves an out-of-range conversion
    // unspecified), both signs, plus exact ties.
    const xs = Float32Array.from({ length: n }, (_, i) => {
      if (i < 64) return (1 + (2 * i + 1) * 2 ** -11) * (i % 2 ? -1 : 1); // ties between neighbouring f16
      const e = -30 + rng.next() * 45.9;
      return (rng.next() < 0.5 ? -1 : 1) * 2 ** e;
    });
    const x = gpu.fromHost(xs, [n]);
    const y = gpu.zeros([n]);
    gpu.dispatch({
      kernel: {
        name: 'f16_round_check',
        code: () => `enable f16;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < ${n}u) { y[g.x] = pack2x16float(vec2<f32>(x[g.x], 0.0)); }
}`,
      },
      tensors: [x, y],
      workgroups: [Math.ceil(n / 64)],
    });
    const bits = new Uint32Array((await y.toFloat32()).buffer);
    let wrong = 0;
    for (let i = 0; i < n; i++) if (f16FromBits(bits[i] & 0xffff) !== f16Round(xs[i])) wrong++;
    expect(wrong).toBe(0);
    x.dispose();
    y.dispose();
  });
});

describe('f16 tensor-core spellings', () => {
  it.skipIf(!hasGpu)('a 32 x 32 x 32 product written with ld16 / st32 compiles through the stub', async () => {
    const gpu = (await gpuContext())!;
    const code = `${F16_MMA_HEAD}
@group(0) @binding(0) var<storage, read> a: array<f16>;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
var<workgroup> sm: array<f16, 2048>;
@compute @workgroup_size(128) fn main(@builtin(local_invocation_index) lid: u32) {
  for (var i = lid; i < 2048u; i += 128u) { sm[i] = a[i]; }
  workgroupBarrier();
  let sg = lid / 32u;
  let r = sg / 2u;
  let col = sg % 2u;
  var acc = ${C32}();
  for (var k = 0u; k < 2u; k++) {
    let l = ${ld16('left', '&sm', 'r * 512u + k * 16u', '32u')};
    let rr = ${ld16('right', '&sm', '1024u + k * 512u + col * 16u', '32u')};
    acc = subgroupMatrixMultiplyAccumulate(l, rr, acc);
  }
  ${st32('&c', 'r * 512u + col * 16u', 'acc', '32u')};
}`;
    expect(code).toContain('subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&sm, ');
    const stub = sgmStubWgsl(code);
    expect(stub).not.toContain('subgroupMatrix');
    const info = await gpu.device.createShaderModule({ code: stub }).getCompilationInfo();
    expect(info.messages.filter((m) => m.type === 'error').map((m) => m.message)).toEqual([]);
  });
});

describe('Dawn toggles', () => {
  it('parses a known list, names an unknown one; --f16 asks for vulkan_enable_f16_on_nvidia once', () => {
    expect(parseDawnToggles('vulkan_use_buffer_robust_access_2, disable_robustness')).toEqual([
      'vulkan_use_buffer_robust_access_2',
      'disable_robustness',
    ]);
    expect(() => parseDawnToggles('disable_robustness,no_such_toggle')).toThrow(
      /--dawn-toggles: 'no_such_toggle' is not a Dawn toggle kimi-linear knows; known: allow_unsafe_apis/,
    );
    expect(acquireOptions({ unsafeApis: true, f16: true, dawnToggles: 'vulkan_enable_f16_on_nvidia' }).toggles).toEqual(
      ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'],
    );
    expect(acquireOptions({}).toggles).toEqual([]);
    expect(DAWN_TOGGLES.vulkan_enable_f16_on_nvidia.safe).toBe(true);
  });

  it('--dawn-toggles-off turns toggles off, joined with the bench flag that turns one off, and refuses a toggle turned both ways', () => {
    const zeroExt = 'use_vulkan_zero_initialize_workgroup_memory_extension';
    const o = acquireOptions({ unsafeApis: true, dawnTogglesOff: zeroExt });
    expect(o.disabledToggles).toEqual([zeroExt]);
    expect(acquireOptions({}).disabledToggles).toEqual([]);
    expect(
      dawnFlagsOf({ ...o, dawnFlags: ['backend=vulkan', 'disable-dawn-features=timestamp_quantization'] }),
    ).toEqual([
      'backend=vulkan',
      'enable-dawn-features=allow_unsafe_apis',
      `disable-dawn-features=timestamp_quantization,${zeroExt}`,
    ]);
    expect(dawnFlagsOf({})).toEqual([]);
    expect(() => acquireOptions({ dawnTogglesOff: 'no_such' })).toThrow(
      /--dawn-toggles-off: 'no_such' is not a Dawn toggle/,
    );
    expect(() => acquireOptions({ unsafeApis: true, dawnTogglesOff: 'allow_unsafe_apis' })).toThrow(
      /--dawn-toggles-off: 'allow_unsafe_apis' is also turned on/,
    );
  });
});
