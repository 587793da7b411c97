/**
 * The WGSL the paged, chunked MLA decode kernels (pass 1 of flash-decoding: decodeTiled, decodeInt8,
 * decodeInt8Sgm) share: workgroup (chunk, b, g) covers tokens [t0, t1) of sequence b for head group g, with
 * the uniforms of pagedChunkParams (index.ts), and finds a token's cache row through the page table. Kept
 * in one place so the kernels agree on the grid and the page look-up the host side lays out.
 */

/** `rowOf(b, t)`: the pool row of sequence b's token t (page size a power of two: shifts; else divisions). */
export function pagedRowOfWgsl(): string[] {
  return [
    'fn rowOf(b: u32, t: u32) -> u32 {',
    '  var pg = t >> p.pageShift; var po = t & (p.pageSize - 1u);',
    '  if (p.pageShift >= 32u) { pg = t / p.pageSize; po = t % p.pageSize; }',
    '  return u32(pageTable[b * p.maxPages + pg]) * p.pageSize + po;',
    '}',
  ];
}

/**
 * The entry point's signature and its chunk of the sequence: chunk, b, g, T (the sequence's length), t0, t1.
 * `lane`: also the subgroup invocation id (kernels that shuffle; all take the subgroup size).
 */
export function chunkMainWgsl(WG: number, lane: boolean): string[] {
  return [
    `@compute @workgroup_size(${WG})`,
    'fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,',
    lane
      ? '        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgs: u32) {'
      : '        @builtin(subgroup_size) sgs: u32) {',
    '  let chunk = wid.x; let b = wid.y; let g = wid.z;',
    '  let T = u32(lengths[b]);',
    '  let t0 = chunk * p.chunkLen;',
    '  let t1 = min(T, t0 + p.chunkLen);',
  ];
}
