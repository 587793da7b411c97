/**
 * The int8 cache's decode on f16 tensor cores (`int8Kernel: 'f16'`; int8F16Plan.ts): the query as f16 rows
 * (int8F16QueryWgsl), the chunks' partials (decodeInt8F16.wgsl.ts), the merge (merge.wgsl.ts).
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous } from '../copy/index.js';
import { int8F16QueryWgsl, mlaInt8F16Wgsl } from './decodeInt8F16.wgsl.js';
import { mlaInt8F16WideWgsl } from './decodeInt8F16Wide.wgsl.js';
import { type MlaDecodeOptions, type MlaReadyQuery, pagedChunkDecode } from './index.js';
import { defaultF16Chunks, type MlaInt8F16Options, mlaInt8F16Key, planMlaInt8F16 } from './int8F16Plan.js';

/** The bits of x as an f32 (a uniform u32 the kernel bitcasts back). */
function f32Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}

/** What bench decode's `--mla-int8-f16` sets for every call that leaves it unset. */
export const mlaInt8F16Overrides: { options?: MlaInt8F16Options } = {};

/** Why this device cannot run the f16 kernel, or undefined. */
export function mlaInt8F16DeviceUnsupported(gpu: GpuContext): string | undefined {
  if (!gpu.features.subgroupMatrixF16)
    return 'this device offers no f16 subgroup matrices (on the H200: --unsafe-apis --f16)';
  if (!gpu.features.subgroups) return 'needs subgroups';
  return undefined;
}

/**
 * The f16 kernel's query dispatch (int8F16QueryWgsl): q [B, H, R] f32 (contiguous) -> qh [B, HP, R / 2] i32, f16
 * pairs of q * c, heads H..HP-1 zero. Also headGemv's f16Query where its one-dispatch form does not apply.
 */
export function int8F16QueryDispatch(gpu: GpuContext, q: Tensor, HP: number, c: number): Tensor {
  const [B, H, R] = q.shape;
  const qh = gpu.empty([B, HP, R / 2], 'i32');
  gpu.dispatch({
    kernel: {
      name: 'mla_int8_f16_query',
      key: `mla_int8_f16_query_h${H}_hp${HP}_r${R}`,
      code: () => int8F16QueryWgsl(H, HP, R),
    },
    tensors: [q, qh],
    params: new Params().f32(c).u32(0, 0, 0),
    workgroups: [HP, B],
  });
  return qh;
}

export function int8F16Decode(
  gpu: GpuContext,
  qIn: Tensor | MlaReadyQuery,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions & { int8F16?: MlaInt8F16Options },
): Tensor {
  // A ready query (mlaDecode's MlaReadyQuery: headGemv's f16Query) is qh as the query dispatch below makes it.
  const ready = 'qh' in qIn ? qIn : undefined;
  const [B, H, R] = ready ? [ready.qh.shape[0], ready.H, 2 * ready.qh.shape[2]] : (qIn as Tensor).shape;
  const { Rv, scale } = opts;
  const o = { ...mlaInt8F16Overrides.options, ...opts.int8F16 };
  const plan = planMlaInt8F16({ H, R, Rv, ...o }, gpu.limits.maxComputeWorkgroupStorageSize);
  if (ready && (plan.qFold || ready.qh.shape[1] !== plan.HP))
    throw new Error(
      `mlaDecode (int8, f16): a ready query needs no qFold and HP = ${plan.HP} heads, got qFold ${plan.qFold}, HP ${ready.qh.shape[1]}`,
    );
  // qFold: the kernel makes the f16 query itself from q f32 (c in the uniforms' spare word).
  const c = scale * Math.LOG2E;
  const query = () => {
    if (ready) return [ready.qh.alias()];
    const qFull = qIn as Tensor;
    if (plan.qFold) return [contiguous(qFull)];
    const q = contiguous(qFull);
    const qh = int8F16QueryDispatch(gpu, q, plan.HP, c);
    q.dispose();
    return [qh];
  };
  return pagedChunkDecode(
    gpu,
    {
      B,
      H,
      Rv,
      NG: plan.NG,
      TT: plan.TB,
      tail: plan.qFold ? [f32Bits(c), 0, 0] : undefined,
      mergeLoads: plan.mergeLoads,
    },
    { ...opts, chunks: opts.chunks ?? o.chunks },
    defaultF16Chunks,
    {
      name: 'mla_decode_int8_f16',
      key: mlaInt8F16Key(plan),
      code: () => (plan.wide ? mlaInt8F16WideWgsl(plan) : mlaInt8F16Wgsl(plan)),
    },
    query,
    [pool, pageTable, lengths],
  );
}
