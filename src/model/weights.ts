/**
 * Loading a Kimi Linear checkpoint onto a device, with the released tensor names. The checkpoint is
 * checked against the config first (every expected tensor present with its shape, nothing extra), so a
 * wrong file fails with the tensor named, before any memory is spent. Routed experts are stacked per
 * layer into [E, I, D] / [E, D, I] tensors for the grouped MoE kernels.
 */
import { copyInto } from '../kernels/copy/index.js';
import type { Checkpoint } from '../io/safetensors/index.js';
import type { DType } from '../tensor/dtype.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { type KimiLinearConfig, isMoeLayer } from './config.js';
import { checkCheckpoint } from './inspect.js';

export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
}

export interface LoadWeightsOptions {
  /** Store matrices in this dtype (norms, A_log, dt_bias and biases stay f32). Default: as stored. */
  dtype?: Extract<DType, 'f32' | 'bf16'>;
}

export interface StackedExperts {
  w1: Tensor;
  w3: Tensor;
  w2: Tensor;
}

export class ModelWeights {
  constructor(
    readonly tensors: Map<string, Tensor>,
    readonly experts: Map<number, StackedExperts>,
  ) {}

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointMismatchError(`weight '${name}' was not loaded`);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    for (const e of this.experts.values()) for (const t of [e.w1, e.w2, e.w3]) t.dispose();
  }
}

/** Tensors kept in f32 whatever the requested dtype: they are small and numerically sensitive. */
export function keepF32(name: string): boolean {
  return /(layernorm|norm)\.weight$|A_log$|dt_bias$|e_score_correction_bias$|conv1d\.weight$/.test(name);
}

export async function loadModelWeights(
  ckpt: Checkpoint,
  cfg: KimiLinearConfig,
  device: Device,
  opts: LoadWeightsOptions = {},
): Promise<ModelWeights> {
  const check = checkCheckpoint(cfg, {
    files: ckpt.files,
    tensors: ckpt.names.map((n) => ({ name: n, shape: ckpt.info(n).shape, dtype: ckpt.info(n).dtype })),
  });
  if (check.missingCount || check.unexpectedCount || check.shapeMismatchCount) {
    const parts: string[] = [];
    if (check.missingCount)
      parts.push(`missing ${check.missingCount} tensor(s): ${check.missing.slice(0, 5).join(', ')}`);
    if (check.unexpectedCount) {
      parts.push(`unexpected ${check.unexpectedCount} tensor(s): ${check.unexpected.slice(0, 5).join(', ')}`);
    }
    for (const m of check.shapeMismatches.slice(0, 5)) {
      parts.push(`${m.name} has shape [${m.found.join(', ')}], expected [${m.expected.join(', ')}]`);
    }
    throw new CheckpointMismatchError(
      `checkpoint ${ckpt.files.join(', ')} does not match the config: ${parts.join('; ')}`,
    );
  }
  const tensors = new Map<string, Tensor>();
  const experts = new Map<number, StackedExperts>();
  const dtypeFor = (name: string) => (opts.dtype && !keepF32(name) ? opts.dtype : keepF32(name) ? 'f32' : undefined);
  for (const name of ckpt.names) {
    if (/\.experts\.\d+\./.test(name)) continue;
    tensors.set(name, await ckpt.loadTensor(name, device, { dtype: dtypeFor(name) }));
  }
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    if (!isMoeLayer(cfg, i)) continue;
    const E = cfg.num_experts!;
    const I = cfg.moe_intermediate_size!;
    const D = cfg.hidden_size;
    const p = `model.layers.${i}.block_sparse_moe.experts`;
    const stored = ckpt.info(`${p}.0.w1.weight`).dtype;
    const dtype = opts.dtype ?? (stored === 'BF16' ? 'bf16' : 'f32');
    const stack = async (w: 'w1' | 'w2' | 'w3', shape: number[]) => {
      const out = device.empty([E, ...shape], dtype);
      for (let e = 0; e < E; e++) {
        const t = await ckpt.loadTensor(`${p}.${e}.${w}.weight`, device, { dtype });
        const slot = out.narrow(0, e, 1);
        copyInto(t, slot);
        slot.dispose();
        t.dispose();
      }
      return out;
    };
    experts.set(i, { w1: await stack('w1', [I, D]), w3: await stack('w3', [I, D]), w2: await stack('w2', [D, I]) });
  }
  return new ModelWeights(tensors, experts);
}
