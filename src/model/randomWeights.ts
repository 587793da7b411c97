/**
 * Random weights made on the device for a config (benchmarks of models too large to ship, like the 48B
 * preset): every tensor the checkpoint would hold, with the shapes `expectedTensors` lists, generated
 * by the counter-based random kernel, so no weight ever passes through host memory. Norm weights are 1,
 * A_log in [0, log 16), the correction bias 0; matrices uniform in +-1/sqrt(fan_in).
 */
import { randomUniform } from '../kernels/random/index.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import type { KimiLinearConfig } from './config.js';
import { expectedTensors } from './inspect.js';
import { ModelWeights, type StackedExperts } from './weights.js';

export function randomModelWeights(
  cfg: KimiLinearConfig,
  device: Device,
  dtype: 'f32' | 'bf16' = 'bf16',
  seed = 1,
): ModelWeights {
  const tensors = new Map<string, Tensor>();
  const experts = new Map<number, StackedExperts>();
  let s = seed;
  const matrix = (shape: number[]) => {
    const fanIn = shape[shape.length - 1];
    const a = 1 / Math.sqrt(fanIn);
    return randomUniform(device, shape, { seed: s++, lo: -a, hi: a, dtype });
  };
  for (const t of expectedTensors(cfg)) {
    const m = /^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\./.exec(t.name);
    if (m) {
      const layer = Number(m[1]);
      if (Number(m[2]) === 0 && t.name.endsWith('w1.weight')) {
        const [E, I, D] = [cfg.num_experts!, cfg.moe_intermediate_size!, cfg.hidden_size];
        experts.set(layer, { w1: matrix([E, I, D]), w3: matrix([E, I, D]), w2: matrix([E, D, I]) });
      }
      continue;
    }
    let w: Tensor;
    if (/norm\.weight$/.test(t.name)) w = randomUniform(device, t.shape, { seed: s++, lo: 1, hi: 1 });
    else if (t.name.endsWith('A_log')) w = randomUniform(device, t.shape, { seed: s++, lo: 0, hi: Math.log(16) });
    else if (t.name.endsWith('e_score_correction_bias'))
      w = randomUniform(device, t.shape, { seed: s++, lo: 0, hi: 0 });
    else if (t.name.endsWith('dt_bias') || t.name.endsWith('conv1d.weight')) {
      w = randomUniform(device, t.shape, { seed: s++, lo: -0.5, hi: 0.5 });
    } else w = matrix(t.shape);
    tensors.set(t.name, w);
  }
  return new ModelWeights(tensors, experts);
}
