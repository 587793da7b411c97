/**
 * Top-k over the last dimension: the k largest values of each row and their indices, largest first,
 * equal values in index order (so the order is total and the result unique). NaN is never selected;
 * a row with fewer than k other values pads with (-inf, -1).
 */
export const TOPK_MAX_K = 64;

export function topkReference(
  x: Float32Array,
  rows: number,
  E: number,
  k: number,
): { values: Float32Array; indices: Int32Array } {
  const values = new Float32Array(rows * k).fill(Number.NEGATIVE_INFINITY);
  const indices = new Int32Array(rows * k).fill(-1);
  for (let r = 0; r < rows; r++) {
    const order: number[] = [];
    for (let i = 0; i < E; i++) if (!Number.isNaN(x[r * E + i])) order.push(i);
    order.sort((a, b) => x[r * E + b] - x[r * E + a] || a - b);
    for (let j = 0; j < Math.min(k, order.length); j++) {
      values[r * k + j] = x[r * E + order[j]];
      indices[r * k + j] = order[j];
    }
  }
  return { values, indices };
}
