/**
 * Rotary position embedding of MLA's qk_rope part, in the convention of the Hugging Face DeepSeek-V3 /
 * Kimi modeling code (`apply_rotary_pos_emb` there):
 *
 *   x' = x viewed as [dr/2, 2] and transposed: (x0, x2, x4, ..., x1, x3, x5, ...)   (de-interleave)
 *   y  = x' * cos(p f) + rotate_half(x') * sin(p f),   f_i = theta^(-2i/dr),  cos/sin repeated twice
 *
 * i.e. the pair (x[2i], x[2i+1]) is rotated by the angle p f_i and lands at (y[i], y[i + dr/2]). The
 * output stays in that de-interleaved order (as in HF); q_pe and k_pe get the same permutation, so
 * their dot products are those of the plain interleaved rotation. The angle p f_i is formed in f32 as
 * in HF (`freqs = outer(t, inv_freq)` in float32), then its cosine and sine in f64.
 *
 * The map is a rotation per pair, so its transpose (the backward) is its inverse: `inverse` rotates
 * by -p f_i and re-interleaves.
 */
export interface RopeDims {
  /** Rows: B*T positions. */
  N: number;
  H: number;
  dr: number;
  theta: number;
}

/** inv_freq_i = 1 / theta^(2i/dr) in f32, as HF's `RotaryEmbedding` computes it. */
export function ropeInvFreq(dr: number, theta: number): Float32Array {
  return Float32Array.from({ length: dr / 2 }, (_, i) => 1 / theta ** ((2 * i) / dr));
}

/** x [N, H, dr] (N = B*T), positions [N] -> y [N, H, dr]. */
export function ropeReference(x: Float32Array, positions: Int32Array, d: RopeDims, inverse = false): Float32Array {
  const { N, H, dr, theta } = d;
  const half = dr / 2;
  const invFreq = ropeInvFreq(dr, theta);
  const y = new Float32Array(N * H * dr);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[n] * invFreq[i]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      for (let h = 0; h < H; h++) {
        const o = (n * H + h) * dr;
        if (!inverse) {
          const a = x[o + 2 * i];
          const b = x[o + 2 * i + 1];
          y[o + i] = a * c - b * s;
          y[o + i + half] = b * c + a * s;
        } else {
          const a = x[o + i];
          const b = x[o + i + half];
          y[o + 2 * i] = a * c + b * s;
          y[o + 2 * i + 1] = b * c - a * s;
        }
      }
    }
  }
  return y;
}
