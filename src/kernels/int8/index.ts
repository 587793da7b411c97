/**
 * int8Matmul(A [M, K/4] packed int8, B [N, K/4] packed int8) -> C [M, N] i32 = A . B^T.
 *
 * Two kernels: `dp4a` (integer dot products, every device, any shape) and `subgroup-matrix` (tensor
 * cores through Dawn's experimental subgroup matrices: where the adapter offers them, with the toggle
 * allow_unsafe_apis; M a multiple of 32, N of 64, K of 32). This is the base for int8 inference
 * (quantised weights, a quantised attention cache): f32 WebGPU has no tensor cores, int8 does.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { DP4A_TILE, int8Dp4aKey, int8Dp4aWgsl } from './dp4a.wgsl.js';
import { int8MatmulReference, packInt8 } from './reference.js';
import { int8SgmKey, int8SgmWgsl, SGM_TILE, type SgmVariant } from './subgroupMatrix.wgsl.js';
import { Rng } from '../../util/random.js';

export { int8MatmulReference, packInt8 } from './reference.js';
export type Int8Kernel = 'dp4a' | 'subgroup-matrix';

const sgmVariant = new WeakMap<GpuContext, SgmVariant | null>();

/** Every form the kernel may need (subgroupMatrix.wgsl.ts), newest first. */
const SGM_VARIANTS: SgmVariant[] = [
  { syntax: 'template', units: 'elements' },
  { syntax: 'template', units: 'words' },
  { syntax: 'bool', units: 'elements' },
  { syntax: 'bool', units: 'words' },
];

/**
 * Find the form of the subgroup-matrix kernel this device compiles and computes exactly: each variant is
 * compiled, then run on a 32 x 64 x 64 product of random int8 and compared with the reference. Null when
 * the device has no int8 subgroup matrices or no variant is exact (`errors` says why for each). Call
 * before asking int8Matmul for the `subgroup-matrix` kernel.
 */
export async function prepareSubgroupMatrix(
  gpu: GpuContext,
): Promise<{ variant: SgmVariant | null; errors: string[] }> {
  const errors: string[] = [];
  if (!gpu.features.subgroupMatrixInt8) {
    sgmVariant.set(gpu, null);
    return {
      variant: null,
      errors: ['the device has no chromium-experimental-subgroup-matrix feature (toggle allow_unsafe_apis?)'],
    };
  }
  const [M, N, K] = [SGM_TILE.BM, SGM_TILE.BN, 2 * SGM_TILE.K];
  const rng = new Rng(17);
  const a = Int8Array.from({ length: M * K }, () => rng.int(256) - 128);
  const b = Int8Array.from({ length: N * K }, () => rng.int(256) - 128);
  const ref = int8MatmulReference(a, b, M, N, K);
  const at = gpu.fromHost(packInt8(a), [M, K / 4], 'i32');
  const bt = gpu.fromHost(packInt8(b), [N, K / 4], 'i32');
  try {
    for (const v of SGM_VARIANTS) {
      const name = `${v.syntax}/${v.units}`;
      const err = await gpu.compileError(int8SgmWgsl(v), int8SgmKey(v));
      if (err) {
        errors.push(`${name}: does not compile: ${err}`);
        continue;
      }
      sgmVariant.set(gpu, v);
      const c = (await int8Matmul(at, bt, { kernel: 'subgroup-matrix' }).read()) as Int32Array;
      let wrong = 0;
      for (let i = 0; i < ref.length; i++) if (c[i] !== ref[i]) wrong++;
      if (wrong === 0) return { variant: v, errors };
      errors.push(`${name}: compiles, but ${wrong} of ${ref.length} outputs differ from the reference`);
    }
  } finally {
    at.dispose();
    bt.dispose();
  }
  sgmVariant.set(gpu, null);
  return { variant: null, errors };
}

export function int8Matmul(a: Tensor, b: Tensor, opts: { kernel?: Int8Kernel; out?: Tensor } = {}): Tensor {
  const device = deviceOf('int8Matmul', a, b);
  expectDType('int8Matmul', 'a', a, ['i32']);
  expectDType('int8Matmul', 'b', b, ['i32']);
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(`int8Matmul: a [${a.shape}] and b [${b.shape}], expected [M, K/4] and [N, K/4] (packed int8)`);
  }
  const [M, K4] = a.shape;
  const [N, K4b] = b.shape;
  if (K4 !== K4b) throw new Error(`int8Matmul: a has K/4 = ${K4} words per row, b has ${K4b}`);
  const K = 4 * K4;
  const gpu = asGpu(device);
  if (!gpu) {
    const unpack = (t: Tensor) => new Int8Array(hostI32(t).slice().buffer);
    return cpu.fromHost(int8MatmulReference(unpack(a), unpack(b), M, N, K), [M, N], 'i32');
  }
  const kernel = opts.kernel ?? 'dp4a';
  const out = opts.out ?? gpu.empty([M, N], 'i32');
  const ac = contiguous(a);
  const bc = contiguous(b);
  if (kernel === 'dp4a') {
    if (M > 0 && N > 0)
      gpu.dispatch({
        kernel: { name: 'int8_matmul_dp4a', key: int8Dp4aKey, code: int8Dp4aWgsl },
        tensors: [ac, bc, out],
        params: new Params().u32(M, N, K4, 0),
        workgroups: [Math.ceil(N / DP4A_TILE.BN), Math.ceil(M / DP4A_TILE.BM)],
      });
  } else {
    const variant = sgmVariant.get(gpu);
    if (variant === undefined)
      throw new Error("int8Matmul: call prepareSubgroupMatrix(gpu) before using kernel 'subgroup-matrix'");
    if (variant === null) throw new Error("int8Matmul: kernel 'subgroup-matrix' is not available on this device");
    if (M % SGM_TILE.BM || N % SGM_TILE.BN || K % SGM_TILE.K) {
      throw new Error(
        `int8Matmul: kernel 'subgroup-matrix' needs M % ${SGM_TILE.BM} = N % ${SGM_TILE.BN} = K % ${SGM_TILE.K} = 0, got M=${M}, N=${N}, K=${K}`,
      );
    }
    gpu.dispatch({
      kernel: { name: 'int8_matmul_sgm', key: int8SgmKey(variant), code: () => int8SgmWgsl(variant) },
      tensors: [ac, bc, out],
      params: new Params().u32(M, N, K, 0),
      workgroups: [N / SGM_TILE.BN, M / SGM_TILE.BM],
    });
  }
  ac.dispose();
  bc.dispose();
  return out;
}
