/**
 * Which attention kernels run: 'wide' (wideTiles.wgsl.ts: 8 x 4 tiles on 128 threads, the default wherever
 * both head sizes are multiples of 4) or 'tiled' (tiles.wgsl.ts: the previous 4 x 4 kernels, which also
 * serve every other head size). `bench train --attention tiled` picks the previous ones for comparisons.
 */
import { wideFits } from './wideTiles.wgsl.js';

export type AttentionKernels = 'wide' | 'tiled';

let kernels: AttentionKernels = 'wide';

export function setAttentionKernels(k: AttentionKernels): void {
  kernels = k;
}

export function attentionKernels(): AttentionKernels {
  return kernels;
}

/** Whether the wide kernels run for these head sizes under the current choice. */
export function useWide(Dk: number, Dv: number): boolean {
  return kernels === 'wide' && wideFits(Dk, Dv);
}
