/**
 * Parameter groups. Muon takes the 2-D weight matrices of the blocks (every *_proj weight, the routed
 * experts as stacks of E matrices, the router gate [E, D]); AdamW takes what is not a hidden-to-hidden
 * matrix: embed_tokens and lm_head (Moonlight/K2 keep them on AdamW), norms, A_log, dt_bias, the
 * depthwise conv weights. Norms, A_log and dt_bias get no weight decay. The MoE correction bias is not a
 * trained parameter (it is nudged by the balancing rule), so it has no group.
 */
import type { ModelWeights } from '../model/weights.js';
import type { Tensor } from '../tensor/tensor.js';

export type Group = 'muon' | 'adamw';

export interface Param {
  /** Checkpoint name, or `model.layers.{i}.block_sparse_moe.experts.w1|w2|w3` for a stacked expert tensor. */
  name: string;
  group: Group;
  decay: boolean;
  /** Decoder layer index, or -1 for embed_tokens, lm_head and the final norm. */
  layer: number;
}

const NO_DECAY = /(norm\.weight|A_log|dt_bias|bias)$/;

export function expertName(layer: number, w: 'w1' | 'w2' | 'w3'): string {
  return `model.layers.${layer}.block_sparse_moe.experts.${w}`;
}

function layerOf(name: string): number {
  const m = /^model\.layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
}

/** Every trainable tensor of a model, in a fixed order (checkpoint order, then the stacked experts). */
export function paramList(weights: ModelWeights, opts: { muon: boolean } = { muon: true }): Param[] {
  const out: Param[] = [];
  for (const [name, t] of weights.tensors) {
    if (name.endsWith('e_score_correction_bias')) continue;
    const matrix = t.rank === 2 && (/_proj\.weight$/.test(name) || name.endsWith('block_sparse_moe.gate.weight'));
    out.push({
      name,
      group: opts.muon && matrix ? 'muon' : 'adamw',
      decay: !NO_DECAY.test(name),
      layer: layerOf(name),
    });
  }
  for (const layer of [...weights.experts.keys()].sort((a, b) => a - b)) {
    for (const w of ['w1', 'w2', 'w3'] as const) {
      out.push({ name: expertName(layer, w), group: opts.muon ? 'muon' : 'adamw', decay: true, layer });
    }
  }
  return out;
}

/** The tensor of a parameter in a ModelWeights (weights or gradients: same structure). */
export function tensorOf(weights: ModelWeights, name: string): Tensor {
  const m = /^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(w1|w2|w3)$/.exec(name);
  if (!m) return weights.get(name);
  const e = weights.experts.get(Number(m[1]));
  if (!e) throw new Error(`no stacked experts for layer ${m[1]} (needed for ${name})`);
  return e[m[2] as 'w1' | 'w2' | 'w3'];
}
