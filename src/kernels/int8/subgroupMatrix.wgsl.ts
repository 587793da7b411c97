/**
 * Int8 matmul on the tensor cores through Dawn's experimental subgroup matrices
 * (`chromium-experimental-subgroup-matrix`, behind the toggle allow_unsafe_apis). On the H200 Dawn
 * offers int8 configurations only: left M=16 x K=32, right K=32 x N=16 (or 8), i32 result.
 *
 * Each subgroup (32 invocations) owns a 32 x 64 block of C: 2 x 4 result fragments of 16 x 16, so each
 * left fragment is used 4 times and each right fragment twice per K step of 32. Four subgroups per
 * workgroup make a 64 x 128 tile. Fragments load straight from storage (L1/L2 serve the reuse across
 * subgroups): a first kernel to learn what the hardware gives, not a tuned one.
 * A is [M, K] row-major; B is [N, K] row-major, i.e. the K x N right operand stored column-major.
 * Offsets and strides count int8 elements (Dawn divides them by 4 for the packed i32 arrays).
 *
 * Dawn changed the builtins' form over time: `syntax: 'bool'` passes the column-major flag as an argument
 * (`subgroupMatrixLoad<T>(p, offset, colMajor, stride)`), `syntax: 'template'` as a template argument
 * (`subgroupMatrixLoad<T, col_major>(p, offset, stride)`). index.ts compiles both and keeps what works.
 */
export const SGM_TILE = { BM: 64, BN: 128, K: 32 } as const;

export type SubgroupMatrixSyntax = 'bool' | 'template';

export const int8SgmKey = (syntax: SubgroupMatrixSyntax) => `int8_matmul_sgm_${syntax}`;

function load(
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

function store(syntax: SubgroupMatrixSyntax, ptr: string, offset: string, value: string, stride: string) {
  return syntax === 'bool'
    ? `subgroupMatrixStore(${ptr}, ${offset}, ${value}, false, ${stride})`
    : `subgroupMatrixStore<row_major>(${ptr}, ${offset}, ${value}, ${stride})`;
}

export function int8SgmWgsl(syntax: SubgroupMatrixSyntax): string {
  const L = 'subgroup_matrix_left<i8, 32, 16>';
  const R = 'subgroup_matrix_right<i8, 16, 32>';
  const lines: string[] = [];
  for (let r = 0; r < 2; r++)
    lines.push(`    let a${r} = ${load(syntax, L, '&a', `(row0 + ${16 * r}u) * p.K + k`, false, 'p.K')};`);
  for (let j = 0; j < 4; j++) {
    lines.push(`    let b${j} = ${load(syntax, R, '&b', `(col0 + ${16 * j}u) * p.K + k`, true, 'p.K')};`);
    for (let r = 0; r < 2; r++)
      lines.push(`    acc${r}${j} = subgroupMatrixMultiplyAccumulate(a${r}, b${j}, acc${r}${j});`);
  }
  const decl: string[] = [];
  const stores: string[] = [];
  for (let r = 0; r < 2; r++)
    for (let j = 0; j < 4; j++) {
      decl.push(`  var acc${r}${j} = subgroup_matrix_result<i32, 16, 16>();`);
      stores.push(`  ${store(syntax, '&c', `(row0 + ${16 * r}u) * p.N + col0 + ${16 * j}u`, `acc${r}${j}`, 'p.N')};`);
    }
  return /* wgsl */ `
enable chromium_experimental_subgroup_matrix;
struct P { M: u32, N: u32, K: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<i32>;
@group(0) @binding(2) var<storage, read> b: array<i32>;
@group(0) @binding(3) var<storage, read_write> c: array<i32>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  // Subgroups of 32 (the H200's size): subgroup s of the workgroup takes block (s / 2, s % 2).
  let sg = li / 32u;
  let row0 = wg.y * ${SGM_TILE.BM}u + (sg / 2u) * 32u;
  let col0 = wg.x * ${SGM_TILE.BN}u + (sg % 2u) * 64u;
${decl.join('\n')}
  for (var k = 0u; k < p.K; k += 32u) {
${lines.join('\n')}
  }
${stores.join('\n')}
}
`;
}
