/**
 * Causal attention for prefill and training, flash style (FlashAttention-2 forward): the T x T score matrix is
 * never stored. Register-tiled with the blocks of tiles.wgsl.ts.
 *
 * A workgroup owns BLOCK query rows of one (batch, head) and walks the key/value blocks (only up to the
 * diagonal when causal). Per block, S = Q K^T is one score tile (thread (ty, tx): queries 4 ty + i, keys
 * 4 tx + j). Each query row keeps a running max m and an unnormalised output; a new block rescales them by
 * exp(m_old - m_new) <= 1, so no exponent is ever positive. The new row max needs the 16 threads of a row:
 * their partial maxima meet in workgroup memory. The row sums need no such exchange per block: each
 * thread keeps its own partial sum of its 4 columns, rescaled by the same factor as everyone in the row,
 * and the 16 partials are added once at the end. P = exp(S - m_new) goes through workgroup memory for
 * O += P V (contract), where a thread owns its 4 rows and the columns tx, tx + 16, ... of O.
 *
 * With stats (training) it also writes lse = m + log(l) and the row max m of the scaled logits, [B, H, T].
 */
import {
  contract,
  decl,
  four,
  perThread,
  prologue,
  SROW,
  scores,
  sharedDecls,
  storeRows,
  TILE_PARAMS,
  TPR,
} from './tiles.wgsl.js';

export interface FlashVariant {
  Dk: number;
  Dv: number;
  causal: boolean;
  /** Also write lse and the row max of the scaled logits, [B, H, T] each (training forward). */
  stats?: boolean;
  /** Inputs read as vec4 (Dk and Dv multiples of 4: flashVec). */
  vec?: boolean;
}

export function flashVec(Dk: number, Dv: number): boolean {
  return Dk % 4 === 0 && Dv % 4 === 0;
}

export function flashKey(v: FlashVariant): string {
  return `attention_flash_tiled_dk${v.Dk}_dv${v.Dv}_${v.causal ? 'causal' : 'full'}${v.stats ? '_stats' : ''}${v.vec ? '_v4' : ''}`;
}

const max4 = (x: string) => `max(max(${x}.x, ${x}.y), max(${x}.z, ${x}.w))`;
const sum4 = (x: string) => `dot(${x}, vec4<f32>(1.0))`;

export function flashWgsl(v: FlashVariant): string {
  const vec = v.vec ?? false;
  const ty = vec ? 'vec4<f32>' : 'f32';
  const PV = perThread(v.Dv).cols;
  // red[row][lane]: one value per thread for each of its 4 rows (partial maxima, then partial sums).
  const red = (i: number) => `red[(ty * 4u + ${i}u) * 4u + tx / 4u][tx % 4u]`;
  const rowOf = (i: number, op: (x: string) => string, comb: string) =>
    `${comb}(${comb}(${op(`red[(ty * 4u + ${i}u) * 4u]`)}, ${op(`red[(ty * 4u + ${i}u) * 4u + 1u]`)}), ${comb}(${op(`red[(ty * 4u + ${i}u) * 4u + 2u]`)}, ${op(`red[(ty * 4u + ${i}u) * 4u + 3u]`)}))`;
  const add = (a: string, b: string) => `(${a} + ${b})`;
  const rowSum = (i: number) =>
    add(
      add(sum4(`red[(ty * 4u + ${i}u) * 4u]`), sum4(`red[(ty * 4u + ${i}u) * 4u + 1u]`)),
      add(sum4(`red[(ty * 4u + ${i}u) * 4u + 2u]`), sum4(`red[(ty * 4u + ${i}u) * 4u + 3u]`)),
    );
  return /* wgsl */ `
${TILE_PARAMS}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<${ty}>;
@group(0) @binding(2) var<storage, read> K: array<${ty}>;
@group(0) @binding(3) var<storage, read> V: array<${ty}>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
${
  v.stats
    ? `@group(0) @binding(5) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(6) var<storage, read_write> RMAX: array<f32>;`
    : ''
}
${sharedDecls()}
var<workgroup> red: array<vec4<f32>, ${(64 * TPR) / 4}>;

@compute @workgroup_size(${TPR * TPR})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${prologue()}
  // The last query block walks every key block (causal): the longest first.
  let q0 = (p.nb - 1u - wid.y) * 64u;
  ${decl('o', PV)}
  var m = vec4<f32>(-3.0e38);
  var l = vec4<f32>(0.0);
  let qs = vec4<u32>(q0 + ty * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let lastKey = ${v.causal ? 'min(q0 + 63u, p.T - 1u)' : 'p.T - 1u'};
  for (var k0 = 0u; k0 <= lastKey; k0 += 64u) {
    ${decl('s', 4)}
    ${scores('s', 'Q', 'K', v.Dk, vec, 'p.dk', 'q0', 'k0')}
    let keys = vec4<u32>(k0 + tx * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    ${four(
      (
        i,
      ) => `let vis${i} = (keys < vec4<u32>(p.T)) & (vec4<u32>(qs[${i}]) < vec4<u32>(p.T))${v.causal ? ` & (keys <= vec4<u32>(qs[${i}]))` : ''};
    let x${i} = select(vec4<f32>(-3.0e38), s${i} * p.scale, vis${i});
    ${red(i)} = ${max4(`x${i}`)};`,
    )}
    workgroupBarrier();
    let mNew = max(m, vec4<f32>(${[0, 1, 2, 3].map((i) => rowOf(i, max4, 'max')).join(', ')}));
    let alpha = exp(m - mNew);
    m = mNew;
    ${four(
      (i) => `let P${i} = select(vec4<f32>(0.0), exp(x${i} - mNew[${i}]), vis${i});
    ps[(ty * 4u + ${i}u) * ${SROW / 4}u + tx] = P${i};`,
    )}
    l = l * alpha + vec4<f32>(${[0, 1, 2, 3].map((i) => sum4(`P${i}`)).join(', ')});
    ${Array.from({ length: PV }, (_, c) => `o${c} *= alpha;`).join(' ')}
    ${contract('o', 'V', v.Dv, vec, 'p.rv', 'k0')}
  }
  workgroupBarrier();
  ${four((i) => `${red(i)} = l[${i}];`)}
  workgroupBarrier();
  let lt = vec4<f32>(${[0, 1, 2, 3].map(rowSum).join(', ')});
  ${storeRows('O', 'o', v.Dv, 'q0', (i) => ` / lt[${i}]`)}${
    v.stats
      ? `
  // m is the final running max (every row sees at least its own key), so lse = m + log l.
  if (tx == 0u) {
    ${four(
      (i) => `if (qs[${i}] < p.T) {
      LSE[(b * p.H + h) * p.T + qs[${i}]] = m[${i}] + log(lt[${i}]);
      RMAX[(b * p.H + h) * p.T + qs[${i}]] = m[${i}];
    }`,
    )}
  }`
      : ''
  }
}`;
}
