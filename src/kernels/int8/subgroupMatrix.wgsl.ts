/**
 * Int8 matmul on the tensor cores through Dawn's experimental subgroup matrices
 * (`chromium-experimental-subgroup-matrix`, behind the toggle allow_unsafe_apis). On the H200 Dawn
 * offers int8 configurations only: left M=16 x K=32, right K=32 x N=16 (or 8), i32 result.
 *
 * A workgroup is one subgroup (32 invocations) and owns a 32 x 64 block of C: 2 x 4 result fragments of
 * 16 x 16, so each left fragment is used 4 times and each right fragment twice per K step of 32. One
 * subgroup per workgroup because the builtins' offsets must be workgroup-uniform (WGSL's uniformity
 * analysis rejects offsets computed from the invocation index). Fragments load straight from storage
 * (L1/L2 serve the reuse across subgroups): a first kernel to learn what the hardware gives, not a tuned one.
 * A is [M, K] row-major; B is [N, K] row-major, i.e. the K x N right operand stored column-major.
 *
 * Dawn changed these builtins over time, so the kernel comes in variants and index.ts keeps the one that
 * compiles AND computes the exact product on the device:
 * - `syntax: 'bool'` passes the column-major flag as an argument (`subgroupMatrixLoad<T>(p, offset,
 *   colMajor, stride)`), `'template'` as a template argument (`subgroupMatrixLoad<T, col_major>(p, offset,
 *   stride)`);
 * - `units`: for int8 matrices read from packed `array<i32>`, Dawn's docs count offset and stride in int8
 *   elements (`'elements'`), but Dawn in npm webgpu 0.6.2 passes them to Vulkan unchanged, where they
 *   count 32-bit words (`'words'`): measured on the H200, 2026-12-01 (a stride of 16 read rows 64 bytes
 *   apart; element counts ran off the end of the buffer and gave wrong products).
 */
export const SGM_TILE = { BM: 32, BN: 64, K: 32 } as const;

export type SubgroupMatrixSyntax = 'bool' | 'template';
export interface SgmVariant {
  syntax: SubgroupMatrixSyntax;
  units: 'elements' | 'words';
}

export const int8SgmKey = (v: SgmVariant) => `int8_matmul_sgm_${v.syntax}_${v.units}`;

/** A subgroupMatrixLoad call in the given syntax (shared with the MLA decode kernel, decodeInt8Sgm.wgsl.ts). */
export function sgmLoad(
  syntax: SubgroupMatrixSyntax,
  type: string,
  ptr: string,
  offset: string,
  colMajor: boolean,
  stride: string,
) {
  return syntax === 'bool'
    ? `subgroupMatrixLoad<${type}>(${ptr}, ${offset}, ${colMajor}, ${stride})`
    : `subgroupMatrixLoad<${type}, ${colMajor ? 'col_major' : 'row_major'}>(${ptr}, ${offset}, ${stride})`;
}

/** A subgroupMatrixStore call, row-major, in the given syntax. */
export function sgmStore(syntax: SubgroupMatrixSyntax, ptr: string, offset: string, value: string, stride: string) {
  return syntax === 'bool'
    ? `subgroupMatrixStore(${ptr}, ${offset}, ${value}, false, ${stride})`
    : `subgroupMatrixStore<row_major>(${ptr}, ${offset}, ${value}, ${stride})`;
}

export function int8SgmWgsl(v: SgmVariant): string {
  const { syntax } = v;
  // Offsets and strides of the int8 operands: elements, or 32-bit words (element counts / 4).
  const u = (x: string) => (v.units === 'words' ? `(${x}) / 4u` : x);
  const L = 'subgroup_matrix_left<i8, 32, 16>';
  const R = 'subgroup_matrix_right<i8, 16, 32>';
  const lines: string[] = [];
  for (let r = 0; r < 2; r++)
    lines.push(`    let a${r} = ${sgmLoad(syntax, L, '&a', u(`(row0 + ${16 * r}u) * p.K + k`), false, u('p.K'))};`);
  for (let j = 0; j < 4; j++) {
    lines.push(`    let b${j} = ${sgmLoad(syntax, R, '&b', u(`(col0 + ${16 * j}u) * p.K + k`), true, u('p.K'))};`);
    for (let r = 0; r < 2; r++)
      lines.push(`    acc${r}${j} = subgroupMatrixMultiplyAccumulate(a${r}, b${j}, acc${r}${j});`);
  }
  const decl: string[] = [];
  const stores: string[] = [];
  for (let r = 0; r < 2; r++)
    for (let j = 0; j < 4; j++) {
      decl.push(`  var acc${r}${j} = subgroup_matrix_result<i32, 16, 16>();`);
      stores.push(
        `  ${sgmStore(syntax, '&c', `(row0 + ${16 * r}u) * p.N + col0 + ${16 * j}u`, `acc${r}${j}`, 'p.N')};`,
      );
    }
  return /* wgsl */ `
enable chromium_experimental_subgroup_matrix;
struct P { M: u32, N: u32, K: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<i32>;
@group(0) @binding(2) var<storage, read> b: array<i32>;
@group(0) @binding(3) var<storage, read_write> c: array<i32>;

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wg: vec3u) {
  let row0 = wg.y * ${SGM_TILE.BM}u;
  let col0 = wg.x * ${SGM_TILE.BN}u;
${decl.join('\n')}
  for (var k = 0u; k < p.K; k += 32u) {
${lines.join('\n')}
  }
${stores.join('\n')}
}
`;
}
