/**
 * Which attention kernels run: 'wide' (wideTiles.wgsl.ts: 8 x 4 tiles on 128 threads, wherever both head
 * sizes are multiples of 4), 'wide-half' (the same with the score tile passed through workgroup memory
 * 32 step columns at a time: ~17 KB of workgroup memory instead of ~26, so more workgroups fit an SM) or
 * 'tiled' (tiles.wgsl.ts: the previous 4 x 4 kernels, which also serve every other head size).
 * `bench train --attention <kind>` picks one for comparisons.
 */
import { wideFits } from './wideTiles.wgsl.js';

export type AttentionKernels = 'wide' | 'wide-half' | 'tiled';
export const ATTENTION_KERNELS: readonly AttentionKernels[] = ['tiled', 'wide', 'wide-half'];

let kernels: AttentionKernels = 'wide';

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

/** With useWide: whether pT holds half the score tile at a time. */
export function wideHalves(): boolean {
  return kernels === 'wide-half';
}
