/**
 * Reference cross-entropy, mean over the rows whose target is not ignoreIndex (f64 accumulation):
 *   lse_n = log sum_v exp(z_nv),  loss = (1/C) sum_{n counted} (lse_n - z_n,target_n)
 *   dz_nv = (softmax(z_n)_v - [v == target_n]) / C       (0 on ignored rows)
 * where C is the number of counted rows. When every row is ignored the loss is defined as 0 with a
 * zero gradient (PyTorch gives NaN; a NaN would poison an accumulated training loss for nothing).
 * A target outside [0, V) that is not ignoreIndex is an error here.
 */
export interface CrossEntropyResult {
  loss: number;
  dLogits: Float32Array;
}

export const DEFAULT_IGNORE_INDEX = -100;

export function countTargets(targets: Int32Array, V: number, ignoreIndex: number, what = 'targets'): number {
  let count = 0;
  for (let n = 0; n < targets.length; n++) {
    const t = targets[n];
    if (t === ignoreIndex) continue;
    if (!(t >= 0 && t < V)) {
      throw new RangeError(`crossEntropy: ${what}[${n}] = ${t}, expected 0..${V - 1} or ignoreIndex ${ignoreIndex}`);
    }
    count++;
  }
  return count;
}

/** Adds row n's loss term to the returned sum and writes its unscaled gradient softmax - onehot. */
function rowTerm(
  z: Float32Array,
  off: number,
  V: number,
  target: number,
  grad: Float32Array,
  gOff: number,
  inv: number,
) {
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, z[off + v]);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(z[off + v] - max);
  const lse = max + Math.log(sum);
  for (let v = 0; v < V; v++) grad[gOff + v] = (Math.exp(z[off + v] - lse) - (v === target ? 1 : 0)) * inv;
  return lse - z[off + target];
}

export function crossEntropyReference(
  logits: Float32Array,
  targets: Int32Array,
  V: number,
  ignoreIndex = DEFAULT_IGNORE_INDEX,
): CrossEntropyResult {
  const N = targets.length;
  const count = countTargets(targets, V, ignoreIndex);
  const dLogits = new Float32Array(N * V);
  if (count === 0) return { loss: 0, dLogits };
  let total = 0;
  for (let n = 0; n < N; n++) {
    if (targets[n] === ignoreIndex) continue;
    total += rowTerm(logits, n * V, V, targets[n], dLogits, n * V, 1 / count);
  }
  return { loss: total / count, dLogits };
}

export interface LinearCrossEntropyResult {
  loss: number;
  dh: Float32Array;
  dWeight: Float32Array;
}

/**
 * Cross-entropy of logits = h W^T (the LM head) with its gradients dh = dz W and dW = dz^T h, one row at
 * a time so only one row of logits exists.
 */
export function linearCrossEntropyReference(
  h: Float32Array,
  weight: Float32Array,
  targets: Int32Array,
  dims: { N: number; D: number; V: number },
  ignoreIndex = DEFAULT_IGNORE_INDEX,
): LinearCrossEntropyResult {
  const { N, D, V } = dims;
  const count = countTargets(targets, V, ignoreIndex);
  const dh = new Float64Array(N * D);
  const dW = new Float64Array(V * D);
  const z = new Float32Array(V);
  const dz = new Float32Array(V);
  let total = 0;
  for (let n = 0; n < N; n++) {
    if (targets[n] === ignoreIndex) continue;
    for (let v = 0; v < V; v++) {
      let acc = 0;
      for (let d = 0; d < D; d++) acc += h[n * D + d] * weight[v * D + d];
      z[v] = acc;
    }
    total += rowTerm(z, 0, V, targets[n], dz, 0, 1 / count);
    for (let v = 0; v < V; v++) {
      const g = dz[v];
      for (let d = 0; d < D; d++) {
        dh[n * D + d] += g * weight[v * D + d];
        dW[v * D + d] += g * h[n * D + d];
      }
    }
  }
  return { loss: count ? total / count : 0, dh: Float32Array.from(dh), dWeight: Float32Array.from(dW) };
}
