/**
 * The FlashAttention-2 backward of backward.wgsl.ts (same two passes after rowDot, same formulas, same
 * causal block skipping) on the wide tiles of wideTiles.wgsl.ts:
 *   dkdv  own block = 64 keys, walking the query blocks that see them: S^T = K Q^T and dP^T = V dO^T as
 *         8 x 4 tiles per thread, P^T = exp(scale S^T - lse) and dS^T = P^T (dP^T - D) in registers; P^T
 *         goes through pT for dv += P^T dO, then dS^T for dk += dS^T Q.
 *   dq    own block = 64 queries, walking the key blocks up to the diagonal: dS as above, dq += dS K.
 * lse and D of the step columns (queries, in dkdv) are read straight from global memory (4 per thread per
 * block, L1-resident); those of the own rows (dq) once per workgroup.
 */
import { TILE_PARAMS } from './tiles.wgsl.js';
import {
  contractDecl,
  decl8,
  eight,
  storeContracted,
  contractTile,
  WB,
  WIDE_THREADS,
  widePrologue,
  wideScores,
  wideSharedDecls,
  type PTPasses,
} from './wideTiles.wgsl.js';

export interface BackwardWideVariant {
  Dk: number;
  Dv: number;
  causal: boolean;
  /** Passes of the score tile through pT per step (wideTiles.wgsl.ts contractTile); default 1. */
  passes?: PTPasses;
}

export function backwardWideKey(kind: 'dkdv' | 'dq', v: BackwardWideVariant): string {
  return `attention_bwd_${kind}_wide_dk${v.Dk}_dv${v.Dv}_${v.causal ? 'causal' : 'full'}${(v.passes ?? 1) > 1 ? `_p${v.passes}` : ''}`;
}

const header = `
${TILE_PARAMS}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> K: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> V: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dO: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> LSE: array<f32>;
@group(0) @binding(6) var<storage, read> Drow: array<f32>;`;

export function dkdvWideWgsl(v: BackwardWideVariant): string {
  return /* wgsl */ `${header}
@group(0) @binding(7) var<storage, read_write> dK: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dV: array<vec4<f32>>;
${wideSharedDecls(v.passes ?? 1)}

@compute @workgroup_size(${WIDE_THREADS})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${widePrologue()}
  // Key block 0 is seen by every query block: the longest first.
  let k0 = wid.y * ${WB}u;
  ${contractDecl('dk', v.Dk)}
  ${contractDecl('dv', v.Dv)}
  let kr0 = vec4<u32>(k0 + ty * 8u) + vec4<u32>(0u, 1u, 2u, 3u);
  let kr1 = kr0 + vec4<u32>(4u);
  let statBase = (b * p.H + h) * p.T;
  for (var q0 = ${v.causal ? 'k0' : '0u'}; q0 < p.T; q0 += ${WB}u) {
    ${decl8('s')}
    ${decl8('g')}
    // s_i = S^T (key 8ty + i, queries tx + 16 j); g_i = dP^T likewise.
    ${wideScores('s', 'K', 'Q', v.Dk, 'p.dk', 'k0', 'q0')}
    ${wideScores('g', 'V', 'dO', v.Dv, 'p.dv', 'k0', 'q0')}
    let qs = vec4<u32>(q0 + tx) + vec4<u32>(0u, 16u, 32u, 48u);
    let qc = min(qs, vec4<u32>(p.T - 1u));
    let L = vec4<f32>(LSE[statBase + qc.x], LSE[statBase + qc.y], LSE[statBase + qc.z], LSE[statBase + qc.w]);
    let Dq = vec4<f32>(Drow[statBase + qc.x], Drow[statBase + qc.y], Drow[statBase + qc.z], Drow[statBase + qc.w]);
    ${eight((i) => {
      const ki = `kr${i >> 2}[${i & 3}]`;
      return `let vis${i} = (qs < vec4<u32>(p.T)) & (vec4<u32>(${ki}) < vec4<u32>(p.T))${v.causal ? ` & (vec4<u32>(${ki}) <= qs)` : ''};
    let P${i} = select(vec4<f32>(0.0), exp(s${i} * p.scale - L), vis${i});
    g${i} = P${i} * (g${i} - Dq);`;
    })}
    ${contractTile('P', 'dv', 'dO', v.Dv, 'p.rv', 'q0', v.passes ?? 1)}
    workgroupBarrier();
    ${contractTile('g', 'dk', 'Q', v.Dk, 'p.rk', 'q0', v.passes ?? 1)}
  }
  ${storeContracted('dK', 'dk', v.Dk, 'k0', () => ' * p.scale')}
  ${storeContracted('dV', 'dv', v.Dv, 'k0', () => '')}
}`;
}

export function dqWideWgsl(v: BackwardWideVariant): string {
  return /* wgsl */ `${header}
@group(0) @binding(7) var<storage, read_write> dQ: array<vec4<f32>>;
${wideSharedDecls(v.passes ?? 1)}

@compute @workgroup_size(${WIDE_THREADS})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${widePrologue()}
  // The last query block walks every key block: the longest first.
  let q0 = (p.nb - 1u - wid.y) * ${WB}u;
  ${contractDecl('dq', v.Dk)}
  let qr0 = vec4<u32>(q0 + ty * 8u) + vec4<u32>(0u, 1u, 2u, 3u);
  let qr1 = qr0 + vec4<u32>(4u);
  let statBase = (b * p.H + h) * p.T;
  let c0 = min(qr0, vec4<u32>(p.T - 1u));
  let c1 = min(qr1, vec4<u32>(p.T - 1u));
  let L0 = vec4<f32>(LSE[statBase + c0.x], LSE[statBase + c0.y], LSE[statBase + c0.z], LSE[statBase + c0.w]);
  let L1 = vec4<f32>(LSE[statBase + c1.x], LSE[statBase + c1.y], LSE[statBase + c1.z], LSE[statBase + c1.w]);
  let D0 = vec4<f32>(Drow[statBase + c0.x], Drow[statBase + c0.y], Drow[statBase + c0.z], Drow[statBase + c0.w]);
  let D1 = vec4<f32>(Drow[statBase + c1.x], Drow[statBase + c1.y], Drow[statBase + c1.z], Drow[statBase + c1.w]);
  let lastKey = ${v.causal ? `min(q0 + ${WB - 1}u, p.T - 1u)` : 'p.T - 1u'};
  for (var k0 = 0u; k0 <= lastKey; k0 += ${WB}u) {
    ${decl8('s')}
    ${decl8('g')}
    // s_i = S (query 8ty + i, keys tx + 16 j); g_i = dP likewise.
    ${wideScores('s', 'Q', 'K', v.Dk, 'p.dk', 'q0', 'k0')}
    ${wideScores('g', 'dO', 'V', v.Dv, 'p.dv', 'q0', 'k0')}
    let keys = vec4<u32>(k0 + tx) + vec4<u32>(0u, 16u, 32u, 48u);
    ${eight((i) => {
      const qi = `qr${i >> 2}[${i & 3}]`;
      const c = `${i >> 2}[${i & 3}]`;
      return `let vis${i} = (keys < vec4<u32>(p.T)) & (vec4<u32>(${qi}) < vec4<u32>(p.T))${v.causal ? ` & (keys <= vec4<u32>(${qi}))` : ''};
    g${i} = select(vec4<f32>(0.0), exp(s${i} * p.scale - L${c}) * (g${i} - D${c}), vis${i});`;
    })}
    ${contractTile('g', 'dq', 'K', v.Dk, 'p.rk', 'k0', v.passes ?? 1)}
  }
  ${storeContracted('dQ', 'dq', v.Dk, 'q0', () => ' * p.scale')}
}`;
}
