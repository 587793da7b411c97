/**
 * Int8 matmul on the integer dot-product instruction (WGSL `dot4I8Packed`, DP4A on NVIDIA): four
 * multiply-adds per instruction, available on every WebGPU device, so it is the portable int8 path and
 * the baseline the tensor-core kernel is measured against.
 *
 * Tiling: a 64 x 64 tile of C per workgroup of 16 x 16 threads, each thread a 4 x 4 register block; A and
 * B are staged through workgroup memory 8 words (32 int8 values of K) at a time. Rows of the staging
 * arrays are padded by one word so the 16 threads reading a column hit 16 different banks.
 */
export const DP4A_TILE = { BM: 64, BN: 64, BK4: 8 } as const;

export const int8Dp4aKey = 'int8_matmul_dp4a';

export function int8Dp4aWgsl(): string {
  const { BM, BN, BK4 } = DP4A_TILE;
  const S = BK4 + 1;
  return /* wgsl */ `
struct P { M: u32, N: u32, K4: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<i32>;

var<workgroup> As: array<u32, ${BM * S}>;
var<workgroup> Bs: array<u32, ${BN * S}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let li = lid.y * 16u + lid.x;
  let row0 = wg.y * ${BM}u;
  let col0 = wg.x * ${BN}u;
  var acc: array<array<i32, 4>, 4>;
  for (var k0 = 0u; k0 < p.K4; k0 += ${BK4}u) {
    // 256 threads stage 64 rows x 8 words of A and of B: two words each.
    for (var e = li; e < ${BM * BK4}u; e += 256u) {
      let r = e / ${BK4}u;
      let kk = e % ${BK4}u;
      var av = 0u;
      if (row0 + r < p.M && k0 + kk < p.K4) { av = a[(row0 + r) * p.K4 + k0 + kk]; }
      As[r * ${S}u + kk] = av;
      var bv = 0u;
      if (col0 + r < p.N && k0 + kk < p.K4) { bv = b[(col0 + r) * p.K4 + k0 + kk]; }
      Bs[r * ${S}u + kk] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK4}u; kk++) {
      var av: array<u32, 4>;
      var bv: array<u32, 4>;
      for (var i = 0u; i < 4u; i++) {
        av[i] = As[(lid.y + 16u * i) * ${S}u + kk];
        bv[i] = Bs[(lid.x + 16u * i) * ${S}u + kk];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] += dot4I8Packed(av[i], bv[j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let cc = col0 + lid.x + 16u * j;
      if (r < p.M && cc < p.N) { c[r * p.N + cc] = acc[i][j]; }
    }
  }
}
`;
}
