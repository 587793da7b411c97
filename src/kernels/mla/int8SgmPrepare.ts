/**
 * prepareMlaInt8Sgm: decide once per device whether mlaDecode's int8 path may use the tensor cores.
 * Dawn's subgroup matrices are experimental (behind allow_unsafe_apis), their builtins changed form over
 * time and the offsets' units differ from the documentation (src/kernels/int8/subgroupMatrix.wgsl.ts),
 * so the kernel is not trusted on sight: the int8 matmul's probe picks the builtin form, then the MLA
 * kernel is compiled at the 48B shapes and run beside the dp4a kernel on a small cache; it may run only
 * if both agree (the integer products are exact, so they match to f32 rounding; on the H200 they match bit
 * for bit). mlaDecode then takes it by default (MLA_INT8_SGM_BY_DEFAULT) or when asked (`int8Kernel`).
 */
import type { GpuContext } from '../../gpu/context.js';
import { Rng } from '../../util/random.js';
import { prepareSubgroupMatrix } from '../int8/index.js';
import { mlaInt8SgmWgsl } from './decodeInt8Sgm.wgsl.js';
import { cacheWrite, int8RowWords, mlaDecode } from './index.js';
import { planMlaInt8Sgm } from './int8SgmPlan.js';
import { mlaInt8SgmState } from './int8SgmState.js';

export interface MlaInt8SgmPrepared {
  /** `subgroup-matrix`: the kernel compiles and is exact here (mlaDecode takes it when asked, or by
   * default if MLA_INT8_SGM_BY_DEFAULT); `dp4a`: it cannot run here. */
  kernel: 'subgroup-matrix' | 'dp4a';
  /** Why the tensor cores are not used (kernel dp4a). */
  reason?: string;
  /** The check: max |sgm - dp4a| / max |dp4a| over a small cache. */
  maxRelDiff?: number;
  variant?: unknown;
}

/** Agreement needed between the two kernels (relative to the largest output). */
const AGREE = 1e-4;

export async function prepareMlaInt8Sgm(gpu: GpuContext): Promise<MlaInt8SgmPrepared> {
  const refuse = (reason: string): MlaInt8SgmPrepared => {
    mlaInt8SgmState.set(gpu, { variant: null, reason });
    return { kernel: 'dp4a', reason };
  };
  if (!gpu.features.subgroupMatrixInt8)
    return refuse('the device has no chromium-experimental-subgroup-matrix feature (Dawn toggle allow_unsafe_apis?)');
  const sg = gpu.adapterInfo;
  if (!gpu.features.subgroups || sg.subgroupMinSize !== 32 || sg.subgroupMaxSize !== 32)
    return refuse(`needs subgroups of exactly 32 lanes, the adapter has ${sg.subgroupMinSize}-${sg.subgroupMaxSize}`);
  const prep = await prepareSubgroupMatrix(gpu);
  if (!prep.variant) return refuse(`no exact form of the int8 subgroup-matrix builtins: ${prep.errors.join('; ')}`);
  const variant = prep.variant;
  const [H, R, Rv] = [32, 576, 512];
  const plan = planMlaInt8Sgm(
    { H, R, Rv, variant },
    gpu.limits.maxComputeWorkgroupStorageSize,
    gpu.limits.maxComputeInvocationsPerWorkgroup,
  );
  // Inside an error scope: a module that fails to compile must not surface later as an uncaptured error
  // that poisons the context's next batch (the decode bench then stays on dp4a instead of failing).
  const err = await gpu.compileError(mlaInt8SgmWgsl(plan), 'mla_int8_sgm_probe');
  if (err) return refuse(`the kernel does not compile: ${err}`);
  // One sequence of 161 rows (awkward: 5 blocks, the last of one row) over pages of 16, two chunks.
  const rng = new Rng(23);
  const T = 161;
  const pageSize = 16;
  const pages = Math.ceil(T / pageSize);
  const order = Array.from({ length: pages }, (_, i) => (i * 7) % pages);
  const pool = gpu.zeros([pages, pageSize, int8RowWords(R, Rv)], 'i32');
  const table = gpu.fromHost(Int32Array.from(order), [1, pages], 'i32');
  const lengths = gpu.fromHost(Int32Array.from([T]), [1], 'i32');
  const rows = gpu.fromHost(
    Float32Array.from({ length: T * R }, () => rng.normal()),
    [T, R],
  );
  const seq = gpu.fromHost(new Int32Array(T), [T], 'i32');
  const pos = gpu.fromHost(
    Int32Array.from({ length: T }, (_, i) => i),
    [T],
    'i32',
  );
  const q = gpu.fromHost(
    Float32Array.from({ length: H * R }, () => rng.normal()),
    [1, H, R],
  );
  mlaInt8SgmState.set(gpu, { variant });
  try {
    cacheWrite(pool, rows, seq, pos, table, { Rv });
    const opts = { Rv, scale: 0.07, maxLength: T, chunks: 2 };
    const a = (await mlaDecode(q, pool, table, lengths, { ...opts, int8Kernel: 'dp4a' }).read()) as Float32Array;
    const b = (await mlaDecode(q, pool, table, lengths, {
      ...opts,
      int8Kernel: 'subgroup-matrix',
    }).read()) as Float32Array;
    let maxAbs = 0;
    let maxRef = 0;
    let finite = true;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(b[i])) finite = false;
      maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
      maxRef = Math.max(maxRef, Math.abs(a[i]));
    }
    const maxRelDiff = maxAbs / maxRef;
    if (!finite || !(maxRelDiff <= AGREE)) {
      const r = refuse(`disagrees with the dp4a kernel: max relative difference ${maxRelDiff}, finite ${finite}`);
      return { ...r, maxRelDiff, variant };
    }
    return { kernel: 'subgroup-matrix', maxRelDiff, variant };
  } catch (e) {
    return refuse(`failed on the device: ${(e as Error).message}`);
  } finally {
    for (const t of [pool, table, lengths, rows, seq, pos, q]) t.dispose();
  }
}
