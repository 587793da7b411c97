/**
 * Which attention kernels run where both head sizes are multiples of 4: 'wide' (wideTiles.wgsl.ts: 8 x 4
 * tiles on 128 threads), 'wide-half' (the default: the same with the score tile passed through workgroup memory
 * 32 step columns at a time: ~17 KB of workgroup memory instead of ~26, so more workgroups fit an SM),
 * 'wide-quarter' (16 at a time, ~13 KB) or
 * 'tiled' (tiles.wgsl.ts: the previous 4 x 4 kernels, which also serve every other head size).
 * `bench train --attention <kind>` picks one for comparisons.
 */
import { type PTPasses, wideFits } from './wideTiles.wgsl.js';

export type AttentionKernels = 'wide' | 'wide-half' | 'wide-quarter' | 'tiled';
export const ATTENTION_KERNELS: readonly AttentionKernels[] = ['tiled', 'wide', 'wide-half', 'wide-quarter'];

let kernels: AttentionKernels = 'wide-half';

export function setAttentionKernels(k: AttentionKernels): void {
  kernels = k;
}

export function attentionKernels(): AttentionKernels {
  return kernels;
}

/** Whether the wide kernels run for these head sizes under the current choice. */
export function useWide(Dk: number, Dv: number): boolean {
  return kernels !== 'tiled' && wideFits(Dk, Dv);
}

/** With useWide: passes of the score tile through workgroup memory per step. */
export function widePasses(): PTPasses {
  return kernels === 'wide-quarter' ? 4 : kernels === 'wide-half' ? 2 : 1;
}
