/** Embedding lookup: out[n, :] = table[ids[n], :]. An id outside [0, V) is an error, named with V. */
export function embeddingReference(table: Float32Array, ids: Int32Array, V: number, D: number): Float32Array {
  const out = new Float32Array(ids.length * D);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < V)) throw new RangeError(`embedding: token id ${id} at position ${n} is outside [0, ${V})`);
    out.set(table.subarray(id * D, (id + 1) * D), n * D);
  }
  return out;
}
