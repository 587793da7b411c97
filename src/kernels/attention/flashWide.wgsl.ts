/**
 * Flash attention forward on the wide tiles (wideTiles.wgsl.ts): the same algorithm as flash.wgsl.ts
 * (online softmax over 64-key blocks, only up to the diagonal when causal, never storing T x T), with 8 x 4
 * score tiles per thread and the O += P V contraction laid out per head size.
 *
 * Row statistics per key block: each score thread writes the max of its 4 columns for each of its 8 rows to
 * `red` (16 partials per row); thread r < 64 then owns row r's running max m in a register, folds the 16
 * partials in, and publishes the new max and the rescale factor alpha = exp(m_old - m_new) <= 1 (rowM,
 * rowA), which the score threads (P = exp(x - m_new)) and the contraction threads (O *= alpha, on their own
 * rows) read. The row sums l stay per score thread (4 columns, rescaled by the same alpha) and meet once at
 * the end, as in flash.wgsl.ts. With stats it writes lse = m + log l and m, [B, H, T].
 */
import { TILE_PARAMS } from './tiles.wgsl.js';
import {
  contractDecl,
  decl8,
  eight,
  scaleRows,
  storeContracted,
  contractTile,
  WB,
  WIDE_THREADS,
  widePrologue,
  wideScores,
  wideSharedDecls,
  type PTPasses,
} from './wideTiles.wgsl.js';

export interface FlashWideVariant {
  Dk: number;
  Dv: number;
  causal: boolean;
  stats?: boolean;
  /** Passes of the score tile through pT per step (wideTiles.wgsl.ts contractTile); default 1. */
  passes?: PTPasses;
}

export function flashWideKey(v: FlashWideVariant): string {
  return `attention_flash_wide_dk${v.Dk}_dv${v.Dv}_${v.causal ? 'causal' : 'full'}${v.stats ? '_stats' : ''}${(v.passes ?? 1) > 1 ? `_p${v.passes}` : ''}`;
}

const max4 = (x: string) => `max(max(${x}.x, ${x}.y), max(${x}.z, ${x}.w))`;
const sum4 = (x: string) => `dot(${x}, vec4<f32>(1.0))`;

export function flashWideWgsl(v: FlashWideVariant): string {
  // red[row * 4 + tx / 4][tx % 4]: the 16 per-thread partials of each row.
  const red = (i: number) => `red[(ty * 8u + ${i}u) * 4u + tx / 4u][tx % 4u]`;
  const rowFold = (op: string, f: (x: string) => string) =>
    `${op}(${op}(${f('red[lid * 4u]')}, ${f('red[lid * 4u + 1u]')}), ${op}(${f('red[lid * 4u + 2u]')}, ${f('red[lid * 4u + 3u]')}))`;
  const rowSum = `(${sum4('red[lid * 4u]')} + ${sum4('red[lid * 4u + 1u]')}) + (${sum4('red[lid * 4u + 2u]')} + ${sum4('red[lid * 4u + 3u]')})`;
  return /* wgsl */ `
${TILE_PARAMS}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> K: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> V: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> O: array<vec4<f32>>;
${
  v.stats
    ? `@group(0) @binding(5) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(6) var<storage, read_write> RMAX: array<f32>;`
    : ''
}
${wideSharedDecls(v.passes ?? 1)}
var<workgroup> red: array<vec4<f32>, ${WB * 4}>;
var<workgroup> rowM: array<vec4<f32>, ${WB / 4}>;
var<workgroup> rowA: array<vec4<f32>, ${WB / 4}>;

@compute @workgroup_size(${WIDE_THREADS})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${widePrologue()}
  // The last query block walks every key block (causal): the longest first.
  let q0 = (p.nb - 1u - wid.y) * ${WB}u;
  ${contractDecl('o', v.Dv)}
  // Thread lid < 64: the running max of query row q0 + lid.
  var mRow = -3.0e38;
  var l0 = vec4<f32>(0.0);
  var l1 = vec4<f32>(0.0);
  let qr0 = vec4<u32>(q0 + ty * 8u) + vec4<u32>(0u, 1u, 2u, 3u);
  let qr1 = qr0 + vec4<u32>(4u);
  let lastKey = ${v.causal ? `min(q0 + ${WB - 1}u, p.T - 1u)` : 'p.T - 1u'};
  for (var k0 = 0u; k0 <= lastKey; k0 += ${WB}u) {
    ${decl8('s')}
    ${wideScores('s', 'Q', 'K', v.Dk, 'p.dk', 'q0', 'k0')}
    let keys = vec4<u32>(k0 + tx) + vec4<u32>(0u, 16u, 32u, 48u);
    ${eight((i) => {
      const qi = `qr${i >> 2}[${i & 3}]`;
      return `let vis${i} = (keys < vec4<u32>(p.T)) & (vec4<u32>(${qi}) < vec4<u32>(p.T))${v.causal ? ` & (keys <= vec4<u32>(${qi}))` : ''};
    let x${i} = select(vec4<f32>(-3.0e38), s${i} * p.scale, vis${i});
    ${red(i)} = ${max4(`x${i}`)};`;
    })}
    workgroupBarrier();
    if (lid < ${WB}u) {
      let mNew = max(mRow, ${rowFold('max', max4)});
      rowA[lid / 4u][lid % 4u] = exp(mRow - mNew);
      rowM[lid / 4u][lid % 4u] = mNew;
      mRow = mNew;
    }
    workgroupBarrier();
    let m0 = rowM[ty * 2u];
    let m1 = rowM[ty * 2u + 1u];
    ${eight((i) => `let P${i} = select(vec4<f32>(0.0), exp(x${i} - m${i >> 2}[${i & 3}]), vis${i});`)}
    l0 = l0 * rowA[ty * 2u] + vec4<f32>(${[0, 1, 2, 3].map((i) => sum4(`P${i}`)).join(', ')});
    l1 = l1 * rowA[ty * 2u + 1u] + vec4<f32>(${[4, 5, 6, 7].map((i) => sum4(`P${i}`)).join(', ')});
    ${contractTile('P', 'o', 'V', v.Dv, 'p.rv', 'k0', v.passes ?? 1, scaleRows('o', v.Dv, 'rowA'))}
  }
  workgroupBarrier();
  ${eight((i) => `${red(i)} = l${i >> 2}[${i & 3}];`)}
  workgroupBarrier();
  if (lid < ${WB}u) {
    let lt = ${rowSum};
    // 1 / l for the contraction threads' rows (rows past T divide by 0 and are not stored).
    rowA[lid / 4u][lid % 4u] = 1.0 / lt;${
      v.stats
        ? `
    // mRow is the final running max (every row sees at least its own key), so lse = m + log l.
    if (q0 + lid < p.T) {
      LSE[(b * p.H + h) * p.T + q0 + lid] = mRow + log(lt);
      RMAX[(b * p.H + h) * p.T + q0 + lid] = mRow;
    }`
        : ''
    }
  }
  workgroupBarrier();
  ${scaleRows('o', v.Dv, 'rowA')}
  ${storeContracted('O', 'o', v.Dv, 'q0', () => '')}
}`;
}
