/**
 * Learning-rate schedules, a pure function of the step (so a resumed run needs nothing but the step):
 * linear warmup from 0, then
 *   constant;
 *   cosine: lr -> min_lr along half a cosine over the remaining steps;
 *   wsd (warmup-stable-decay, as Kimi Linear pretraining): lr held until the last `decay_steps`, then a
 *     linear or cosine tail to min_lr.
 */
export interface ScheduleConfig {
  kind: 'constant' | 'cosine' | 'wsd';
  lr: number;
  min_lr: number;
  warmup_steps: number;
  total_steps: number;
  /** wsd only: length of the decay tail (default: 20% of total_steps). */
  decay_steps?: number;
  /** wsd only. */
  decay_shape?: 'linear' | 'cosine';
}

/** Learning rate for 0-based step `step`. */
export function lrAt(step: number, s: ScheduleConfig): number {
  if (step < s.warmup_steps) return (s.lr * (step + 1)) / s.warmup_steps;
  if (s.kind === 'constant') return s.lr;
  const tail = (frac: number, shape: 'linear' | 'cosine') => {
    const f = Math.min(1, Math.max(0, frac));
    const k = shape === 'linear' ? 1 - f : 0.5 * (1 + Math.cos(Math.PI * f));
    return s.min_lr + (s.lr - s.min_lr) * k;
  };
  if (s.kind === 'cosine') {
    const span = Math.max(1, s.total_steps - s.warmup_steps);
    return tail((step - s.warmup_steps) / span, 'cosine');
  }
  const decay = s.decay_steps ?? Math.round(0.2 * s.total_steps);
  const start = s.total_steps - decay;
  if (step < start) return s.lr;
  return tail((step - start) / Math.max(1, decay), s.decay_shape ?? 'linear');
}
