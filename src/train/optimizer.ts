/**
 * The trainer's optimizer over a model's parameters: Muon for the matrices and AdamW for the rest (see
 * params.ts), optimizer state on the device (Muon: momentum; AdamW: m, v), one fused kernel per tensor.
 * Every gradient is multiplied on the device by the factor in scalars[coefSlot] (1/accumulation times
 * the global-norm clip factor). `onUpdate` sees each applied change (for the update/weight metrics).
 */
import type { ModelWeights } from '../model/weights.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { matrixDims, muonStepBatched } from './optim/muon.js';
import { adamwStep } from './optim/ops.js';
import { type Param, tensorOf } from './params.js';

export interface OptimizerConfig {
  /** 'muon': Muon for matrices + AdamW for the rest; 'adamw': AdamW for everything. */
  kind: 'muon' | 'adamw';
  betas: [number, number];
  eps: number;
  weight_decay: number;
  momentum: number;
  /** AdamW's learning rate as a multiple of the scheduled lr (1 = the same, as Moonlight). */
  adamw_lr_scale: number;
}

export class Optimizer {
  /** Per parameter name: [m] for Muon, [m, v] for AdamW. */
  readonly state = new Map<string, Tensor[]>();
  /** Steps taken (AdamW's bias correction uses t = step + 1). */
  step = 0;

  constructor(
    readonly params: readonly Param[],
    readonly cfg: OptimizerConfig,
    weights: ModelWeights,
    device: Device,
  ) {
    for (const p of params) {
      const w = tensorOf(weights, p.name);
      const n = p.group === 'muon' ? 1 : 2;
      this.state.set(
        p.name,
        Array.from({ length: n }, () => device.zeros(w.shape)),
      );
    }
  }

  /** State tensors by name (`{param}.m`, `{param}.v`) for the checkpoint. */
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, ts] of this.state) ts.forEach((t, k) => void out.set(`${name}.${k === 0 ? 'm' : 'v'}`, t));
    return out;
  }

  /** Overwrite the state from a checkpoint's host data (every tensor must be present with its size). */
  loadState(get: (name: string) => Float32Array | undefined, device: Device): void {
    for (const [name, t] of this.stateTensors()) {
      const data = get(name);
      if (!data) throw new Error(`trainer state: optimizer tensor '${name}' is missing`);
      if (data.length !== t.numel) {
        throw new Error(`trainer state: optimizer tensor '${name}' has ${data.length} values, expected ${t.numel}`);
      }
      device.write(t, data);
    }
  }

  apply(
    weights: ModelWeights,
    grads: ModelWeights,
    lr: number,
    scalars: Tensor,
    coefSlot: number,
    onUpdate: (p: Param, upd: Tensor, w: Tensor, index: number) => void,
  ): void {
    const t = this.step + 1;
    const tensors = (p: Param) => {
      const w = tensorOf(weights, p.name);
      const g = tensorOf(grads, p.name);
      if (g.dtype !== 'f32' || w.dtype !== 'f32') {
        throw new Error(
          `optimizer: ${p.name} has weight ${w.dtype} and gradient ${g.dtype}, expected f32 for training`,
        );
      }
      return { w, g, st: this.state.get(p.name)!, wd: p.decay ? this.cfg.weight_decay : 0 };
    };
    // Muon parameters of one matrix shape up to a transpose are stepped together (one batched
    // Newton-Schulz chain in the wide orientation, muonStepBatched).
    const groups = new Map<string, number[]>();
    this.params.forEach((p, k) => {
      if (p.group !== 'muon') return;
      const [, r, c] = matrixDims(tensorOf(weights, p.name));
      const key = `${Math.min(r, c)}x${Math.max(r, c)}`;
      groups.set(key, [...(groups.get(key) ?? []), k]);
    });
    for (const ks of groups.values()) {
      const items = ks.map((k) => {
        const { w, g, st, wd } = tensors(this.params[k]);
        return { g, w, m: st[0], upd: w.device.empty(w.shape), wd };
      });
      muonStepBatched(items, { lr, momentum: this.cfg.momentum }, scalars, coefSlot);
      items.forEach((it, j) => {
        onUpdate(this.params[ks[j]], it.upd, it.w, ks[j]);
        it.upd.dispose();
      });
    }
    const [beta1, beta2] = this.cfg.betas;
    this.params.forEach((p, k) => {
      if (p.group !== 'adamw') return;
      const { w, g, st, wd } = tensors(p);
      const upd = w.device.empty(w.shape);
      const h = { lr: lr * this.cfg.adamw_lr_scale, beta1, beta2, eps: this.cfg.eps, wd, t };
      adamwStep(g, w, st[0], st[1], upd, h, scalars, coefSlot);
      onUpdate(p, upd, w, k);
      upd.dispose();
    });
    this.step++;
  }

  dispose(): void {
    for (const ts of this.state.values()) for (const t of ts) t.dispose();
  }
}
