/** dTable[v, :] = sum of dy[n, :] over the positions n whose id is v (a scatter-add of rows), f64 sums. */
export function embeddingBackwardReference(ids: Int32Array, dy: Float32Array, V: number, D: number): Float32Array {
  const acc = new Float64Array(V * D);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < V)) throw new Error(`embeddingBackward: ids[${n}] = ${id} is outside [0, ${V})`);
    for (let c = 0; c < D; c++) acc[id * D + c] += dy[n * D + c];
  }
  return Float32Array.from(acc);
}
