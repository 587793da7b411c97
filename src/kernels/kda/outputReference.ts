/**
 * Pass 3 of the chunked forward (output.wgsl.ts, outputPipelined.wgsl.ts) for one chunk of one head, in f64,
 * written to be read: what those kernels store.
 *    O[i] = scale (q_i * exp(gc_i)) S_in + sum_{j <= i} A_qk[i, j] V'_j        (i < L)
 * S_in is the state entering the chunk ([K, V]), A_qk the chunk's masked and already scaled [64, 64] block (as
 * the intra pass stores it: zero above the diagonal), V' the chunk-corrected values U - W S_in.
 */
import { bf16ArrayToF32, f32ArrayToBf16 } from '../../tensor/dtype.js';

export interface OutputChunk {
  /** Rows of the chunk (1 .. 64). */
  L: number;
  K: number;
  V: number;
  /** [L, K] row-major; gc [L, K] or [L] (GK = 1). */
  q: ArrayLike<number>;
  gc: ArrayLike<number>;
  GK: number;
  /** [K, V] row-major. */
  S: ArrayLike<number>;
  /** [64, 64] row-major (only j <= i < L read). */
  Aqk: ArrayLike<number>;
  /** [L, V] row-major. */
  Vp: ArrayLike<number>;
  scale: number;
}

/** O of the chunk, [L, V] row-major. */
export function outputChunkReference(c: OutputChunk): Float64Array {
  const { L, K, V } = c;
  const o = new Float64Array(L * V);
  for (let i = 0; i < L; i++) {
    for (let col = 0; col < V; col++) {
      let acc = 0;
      for (let ch = 0; ch < K; ch++) {
        const g = c.GK === 1 ? c.gc[i] : c.gc[i * K + ch];
        acc += c.scale * c.q[i * K + ch] * Math.exp(g) * c.S[ch * V + col];
      }
      for (let j = 0; j <= i; j++) acc += c.Aqk[i * 64 + j] * c.Vp[j * V + col];
      o[i * V + col] = acc;
    }
  }
  return o;
}

/**
 * The chunk with its entering state S rounded to bf16 (round to nearest even, f32ToBf16Bits): what the output pass
 * reads where the state pass stores hB as bf16 (kdaForwardTuning.hbBf16, and the storage mode). The output passes'
 * references (outputChunkReference, outputTc16Reference.ts) on it are theirs for a bf16 hB.
 */
export function bf16State(c: OutputChunk): OutputChunk {
  return { ...c, S: bf16ArrayToF32(f32ArrayToBf16(Float32Array.from(c.S))) };
}
