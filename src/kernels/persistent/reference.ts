/**
 * The GEMV chain in plain TS (the definition its kernels are checked against): x_{p+1}[n] = sum_k W_p[n, k] x_p[k],
 * W_p bf16 (the chain's weights, back to back as gemvChainPlan.ts lays them out), accumulated in f64.
 */
import { bf16ArrayToF32 } from '../../tensor/dtype.js';
import type { ChainPhase } from './gemvChainPlan.js';

/** Every phase's output, in order (the last is the chain's result). */
export function gemvChainReference(
  phases: readonly ChainPhase[],
  wBf16: Uint16Array,
  x0: Float32Array,
): Float32Array[] {
  const W = bf16ArrayToF32(wBf16);
  const outs: Float32Array[] = [];
  let x = x0;
  let off = 0;
  for (const { N, K } of phases) {
    if (x.length !== K) throw new Error(`gemvChainReference: input of ${x.length} values, phase wants K = ${K}`);
    const y = new Float32Array(N);
    for (let n = 0; n < N; n++) {
      let s = 0;
      const row = off + n * K;
      for (let k = 0; k < K; k++) s += W[row + k] * x[k];
      y[n] = s;
    }
    off += N * K;
    outs.push(y);
    x = y;
  }
  if (off !== W.length) throw new Error(`gemvChainReference: weights hold ${W.length} values, the phases ${off}`);
  return outs;
}
