/**
 * The folded router's selection by merging sorted lists (routeFold.wgsl.ts, RouteFoldVariant.select 'merge'):
 * the same `routeToken(lid, n, writer)` as the bitonic sort there, with the same picks, order and weights.
 *
 * Why: every one of gate_up's workgroups (1,024 at the 48B shapes, 8 resident an SM) runs the selection
 * before its first weight load. The sort of all P = 256 choices is 36 stages of 128 compare-exchanges
 * through workgroup memory, each behind a barrier: ~1,150 warp-wide workgroup-memory operations a
 * workgroup, ~9,000 an SM, on the path of every weight load (the fold made gate_up ~9 us longer on the H200,
 * routeFold.wgsl.ts). Only the k best are needed, in order.
 *
 * How: T = P / L threads (L = k rounded up to a power of two, at most 8; T = 32 at E = 256, k = 8) each
 * take L choices (e = t, t + T, ...) into registers and sort them with a bitonic network (no barriers);
 * then log2(T) levels halve the lists: thread t < h merges its list with thread t + h's (published in
 * workgroup memory) into the L best of both (best(a[i], b[L-1-i]) is a bitonic sequence holding them,
 * log2(L) half-cleaner stages sort it). 1 + log2(T) barriers (6 at the 48B shapes), one warp of work.
 *
 * Exact: choices are ordered by (choice desc, index asc), a total order, so the k best in order are the
 * same whatever the algorithm; scores and choices are computed by the same expressions as the sort's, and
 * the weights summed by one thread in pick order as there. Padding past E is -f32::MAX, as there.
 */
import type { RouteFoldVariant, RouteLogitSource } from './routeFold.wgsl.js';

/**
 * What both selections declare at module scope: the bindings RL (unless the logits come from a RouteLogitSource),
 * RB (with a bias), RIdx and RW from `first` on, the workgroup arrays rKey / rId (P slots) and rScore (E), and
 * routeBeats (the order of the picks: higher score first, lower expert id on ties).
 */
/**
 * WGSL statement of routeToken's end, the same for every selection: the writer's first invocation writes token n's
 * k picks (rId[0..k), best first) to RIdx and their weights (sigmoid scores, renormalised when p.renorm, times
 * p.scaling) to RW.
 */
export function routeWriteOut(k: number): string {
  return `  if (writer && lid == 0u) {
    var total = 0.0;
    for (var j = 0u; j < ${k}u; j++) { total += rScore[rId[j]]; }
    for (var j = 0u; j < ${k}u; j++) {
      var w = rScore[rId[j]];
      if (${k}u > 1u && p.renorm == 1u) { w = w / (total + 1e-20); }
      RIdx[n * ${k}u + j] = i32(rId[j]);
      RW[n * ${k}u + j] = w * p.scaling;
    }
  }`;
}

export function routeModuleHead(hasBias: boolean, first: number, P: number, E: number, withRL = true): string[] {
  let b = first;
  const H: string[] = [];
  if (withRL) H.push(`@group(0) @binding(${b++}) var<storage, read> RL: array<f32>;`);
  if (hasBias) H.push(`@group(0) @binding(${b++}) var<storage, read> RB: array<f32>;`);
  H.push(`@group(0) @binding(${b++}) var<storage, read_write> RIdx: array<i32>;`);
  H.push(`@group(0) @binding(${b++}) var<storage, read_write> RW: array<f32>;`);
  H.push(`var<workgroup> rKey: array<f32, ${P}>;`);
  H.push(`var<workgroup> rId: array<u32, ${P}>;`);
  H.push(`var<workgroup> rScore: array<f32, ${E}>;`);
  H.push('fn routeBeats(ka: f32, ia: u32, kb: f32, ib: u32) -> bool {');
  H.push('  return ka > kb || (ka == kb && ia < ib);');
  H.push('}');
  return H;
}

/** L: the length of the sorted lists (k rounded up to a power of two). */
function listLength(k: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, k)));
}

/** Whether the merge applies: k <= 8 (registers) and one list a thread fits the workgroup. */
export function routeMergeApplies(E: number, k: number, WG: number): boolean {
  const L = listLength(k);
  const P = Math.max(L, 2 ** Math.ceil(Math.log2(Math.max(2, E))));
  return k >= 1 && k <= 8 && P / L <= WG;
}

/** Compare-exchange of list entries a, b: the better (best first) to a when `desc`, else to b. */
function ce(a: number, b: number, desc: boolean): string {
  const [x, y] = desc ? [a, b] : [b, a];
  // sw: y beats x, so they trade places.
  return (
    `  { let sw = routeBeats(lk${y}, li${y}, lk${x}, li${x}); let tk = select(lk${x}, lk${y}, sw); ` +
    `let ti = select(li${x}, li${y}, sw); lk${y} = select(lk${y}, lk${x}, sw); li${y} = select(li${y}, li${x}, sw); ` +
    `lk${x} = tk; li${x} = ti; }`
  );
}

/** A bitonic sorting network of L entries, best first (sizes 2..L; the last merge all descending). */
function sortNetwork(L: number): string[] {
  const out: string[] = [];
  for (let size = 2; size <= L; size *= 2)
    for (let stride = size / 2; stride >= 1; stride /= 2)
      for (let i = 0; i < L; i++) if ((i & stride) === 0) out.push(ce(i, i + stride, (i & size) === 0));
  return out;
}

/** Half-cleaners sorting a bitonic sequence of L entries, best first. */
function bitonicClean(L: number): string[] {
  const out: string[] = [];
  for (let stride = L / 2; stride >= 1; stride /= 2)
    for (let i = 0; i < L; i++) if ((i & stride) === 0) out.push(ce(i, i + stride, true));
  return out;
}

/** routeFoldWgsl's module-scope WGSL (same bindings and `routeToken` contract) with the merge selection. */
export function routeMergeWgsl(v: RouteFoldVariant, first: number, WG: number, src?: RouteLogitSource): string {
  const { E, k } = v;
  const L = listLength(k);
  const P = Math.max(L, 2 ** Math.ceil(Math.log2(Math.max(2, E))));
  const T = P / L;
  if (!routeMergeApplies(E, k, WG)) throw new Error(`routeMerge: E ${E}, k ${k} in ${WG} invocations does not apply`);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  // rKey / rId: the published lists (thread t's at t * L); rId[0..L) the final one (slot 0 is never published).
  const B = routeModuleHead(v.hasBias, first, P, E, !src);
  const logit = src?.read ?? ((e: string) => `RL[row + ${e}]`);
  const F: string[] = [];
  F.push('fn routeToken(lid: u32, n: u32, writer: bool) {');
  if (!src) F.push('  let row = n * p.rld + p.rcol;');
  for (const m of range(L)) F.push(`  var lk${m} = bitcast<f32>(0xff7fffffu); var li${m} = lid + ${m * T}u;`);
  F.push(`  if (lid < ${T}u) {`);
  for (const m of range(L)) {
    F.push(`    if (li${m} < ${E}u) {`);
    F.push(`      let s = 1.0 / (1.0 + exp(-${logit(`li${m}`)}));`);
    F.push(`      rScore[li${m}] = s;`);
    F.push(`      lk${m} = s${v.hasBias ? ` + RB[li${m}]` : ''};`);
    F.push('    }');
  }
  F.push(...sortNetwork(L).map((l) => `  ${l}`));
  F.push('  }');
  // Level with h lists left to merge into: threads h..2h-1 publish, threads 0..h-1 merge their partner's.
  for (let h = T / 2; h >= 1; h /= 2) {
    F.push(`  if (lid >= ${h}u && lid < ${2 * h}u) {`);
    for (const m of range(L)) F.push(`    rKey[lid * ${L}u + ${m}u] = lk${m}; rId[lid * ${L}u + ${m}u] = li${m};`);
    F.push('  }');
    F.push('  workgroupBarrier();');
    F.push(`  if (lid < ${h}u) {`);
    F.push(`    let o = (lid + ${h}u) * ${L}u;`);
    // best(a[m], b[L-1-m]): the partner's list read reversed.
    for (const m of range(L)) {
      F.push(`    { let bk = rKey[o + ${L - 1 - m}u]; let bi = rId[o + ${L - 1 - m}u];`);
      F.push(
        `      let sw = routeBeats(bk, bi, lk${m}, li${m}); lk${m} = select(lk${m}, bk, sw); li${m} = select(li${m}, bi, sw); }`,
      );
    }
    F.push(...bitonicClean(L).map((l) => `  ${l}`));
    F.push('  }');
  }
  F.push('  if (lid == 0u) {');
  for (const m of range(L)) F.push(`    rId[${m}u] = li${m};`);
  F.push('  }');
  F.push('  workgroupBarrier();');
  F.push(routeWriteOut(k));
  F.push('}');
  return [...B, ...F].join('\n');
}
