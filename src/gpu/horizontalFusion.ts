/**
 * Horizontal fusion: several independent compute kernels ("parts") as ONE dispatch, so that they run at the
 * same time on the same SMs instead of one after the other (WebGPU puts a full barrier between dependent
 * dispatches, and a latency-bound kernel that fills one workgroup per SM leaves the SMs' issue slots idle).
 * The fused pipeline's workgroups are the parts' workgroups in order: the first part's come first (lowest
 * linear ids, so they start first), each part's mapped back to its own (x, y, z) grid.
 *
 * Why textual rewriting: WGSL has no modules, namespaces or unions, so two generated shaders cannot be linked
 * as they are: their module-scope names collide (`p`, `Params`, `main`, helper functions, bindings) and their
 * `var<workgroup>` arrays would add up (a pipeline declares the union of what its parts declare, and the
 * parts never run in the same workgroup). So each part's module is parsed into its top-level declarations and
 * rewritten:
 *  - its `Params` struct becomes `Params_i`, a member of one uniform struct (the parts' blocks packed, each
 *    16-byte aligned, after a header with each part's grid); `p` becomes that member;
 *  - its storage bindings map to the fused module's bindings, deduplicated by tensor: one tensor is bound
 *    once (read_write if any part writes it: WebGPU forbids one buffer as writable and as anything else in one
 *    dispatch) unless every use reads it with different element types (then once per type, all `read`);
 *  - its `var<workgroup>` arrays (vec4<f32> only) become ranges of one shared array, `name[i]` ->
 *    `fuse_sm[OFF + (i)]`;
 *  - its functions, constants and entry point get a per-part prefix; the entry point becomes a function of
 *    (lid, wid[, nwg]) that the fused entry point calls from uniform control flow (the branch is on the
 *    workgroup id), so the barriers inside stay legal.
 * Identifiers are renamed as tokens (never after a `.`: struct members), comments stripped first. Only what
 * the project's generators emit is accepted; anything else throws, naming the part and the declaration. The
 * parts must have the same workgroup size, and must not race: what one part writes no other part of the same
 * dispatch may touch (the caller's duty; nothing orders the parts).
 *
 * One pipeline has one register allocation and one workgroup-memory size, the largest of its parts', and that
 * decides what fits beside what on an SM: on the H200 the KDA state pass beside the intra or output pass took
 * the sum of their times, not the max (kda/overlapProbe.ts). What the project uses it for is different: two
 * passes compiled as one pipeline and dispatched one after the other, for the allocation (kda/statePipeline.ts).
 */
import type { Tensor } from '../tensor/tensor.js';
import type { DispatchArgs } from './context.js';
import { Params } from './params.js';

export interface FusionPart {
  /** Identifies the part's WGSL (its kernel key). */
  key: string;
  /** The part's WGSL: one `@compute` entry point, uniform `p: Params` at binding 0 if any, storage from 1. */
  code: () => string;
  /** The part's own grid. Zero workgroups is allowed (the part then does nothing in this dispatch). */
  workgroups: readonly [number, number?, number?];
  /** Bound at the part's bindings 1..n, in order. */
  tensors: readonly Tensor[];
  params?: Params;
}

interface ParsedBinding {
  index: number;
  name: string;
  access: 'read' | 'read_write';
  type: string;
}

interface ParsedPart {
  wg: number;
  builtins: { kind: string; name: string; type: string }[];
  paramsBody?: string;
  paramsName?: string;
  bindings: ParsedBinding[];
  workgroup: { name: string; length: number }[];
  /** Top-level items other than the ones above (functions, constants, the entry point), comment-free. */
  items: string[];
  /** Its `enable` directives (e.g. `enable subgroups;`), hoisted to the top of the fused module. */
  enables: string[];
  entry: string;
}

const parsedCache = new Map<string, ParsedPart>();

function stripComments(s: string): string {
  return s.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');
}

/** The module's top-level declarations, each as its text (a `;`-terminated one or a braced one). */
export function topLevelItems(code: string): string[] {
  const s = stripComments(code);
  const items: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    let depth = 0;
    let braced = false;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '{' || c === '(' || c === '[') {
        if (c === '{') braced = true;
        depth++;
      } else if (c === '}' || c === ')' || c === ']') {
        depth--;
        if (depth === 0 && c === '}' && braced) {
          i++;
          while (i < s.length && /\s/.test(s[i])) i++;
          if (s[i] === ';') i++;
          break;
        }
      } else if (c === ';' && depth === 0) {
        i++;
        break;
      }
    }
    items.push(s.slice(start, i).trim());
  }
  return items;
}

function parsePart(part: FusionPart, where: string): ParsedPart {
  const cached = parsedCache.get(part.key);
  if (cached) return cached;
  const out: ParsedPart = { wg: 0, builtins: [], bindings: [], workgroup: [], items: [], enables: [], entry: '' };
  const STRUCT = /^struct\s+(\w+)\s*\{([\s\S]*)\}\s*;?$/;
  const UNIFORM = /^@group\(0\)\s*@binding\((\d+)\)\s*var<uniform>\s*(\w+)\s*:\s*(\w+)\s*;$/;
  const STORAGE = /^@group\(0\)\s*@binding\((\d+)\)\s*var<storage,\s*(read|read_write)>\s*(\w+)\s*:\s*array<(.+)>\s*;$/;
  const WORKGROUP = /^var<workgroup>\s*(\w+)\s*:\s*array<vec4<f32>,\s*(\d+)u?>\s*;$/;
  const ENTRY = /^@compute\s*@workgroup_size\((\d+)\)\s*fn\s+main\s*\(([^{]*)\)\s*\{/;
  for (const item of topLevelItems(part.code())) {
    const st = item.match(STRUCT);
    const un = item.match(UNIFORM);
    const sb = item.match(STORAGE);
    const wa = item.match(WORKGROUP);
    const en = item.match(ENTRY);
    if (st) {
      if (out.paramsBody !== undefined) throw new Error(`${where}: more than one struct (${st[1]})`);
      out.paramsName = st[1];
      out.paramsBody = st[2].trim().replace(/,\s*$/, '');
    } else if (un) {
      if (un[1] !== '0' || un[2] !== 'p' || un[3] !== out.paramsName)
        throw new Error(`${where}: uniform '${item}' is not 'p: ${out.paramsName}' at binding 0`);
    } else if (sb) {
      out.bindings.push({
        index: Number(sb[1]),
        access: sb[2] as 'read' | 'read_write',
        name: sb[3],
        type: sb[4].trim(),
      });
    } else if (wa) {
      out.workgroup.push({ name: wa[1], length: Number(wa[2]) });
    } else if (en) {
      out.wg = Number(en[1]);
      for (const a of en[2]
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const b = a.match(/^@builtin\((\w+)\)\s*(\w+)\s*:\s*([\w<>]+)$/);
        if (!b || !['local_invocation_index', 'workgroup_id', 'num_workgroups'].includes(b[1]))
          throw new Error(`${where}: entry point argument '${a}' is not supported`);
        out.builtins.push({ kind: b[1], name: b[2], type: b[3] });
      }
      out.entry = item.slice(item.indexOf('{'));
    } else if (/^(fn|const)\s+\w+/.test(item)) {
      out.items.push(item);
    } else if (/^enable\s+[\w\s,]+;$/.test(item)) {
      out.enables.push(item.replace(/\s+/g, ' '));
    } else {
      throw new Error(`${where}: top-level declaration not supported: ${item.slice(0, 80)}`);
    }
  }
  for (const item of [...out.items, out.entry]) {
    for (const id of item.match(/[A-Za-z_]\w*/g) ?? [])
      if (id.startsWith('fuse')) throw new Error(`${where}: uses the reserved name '${id}'`);
  }
  if (!out.entry) throw new Error(`${where}: no '@compute @workgroup_size(n) fn main(...)' entry point`);
  out.bindings.sort((a, b) => a.index - b.index);
  out.bindings.forEach((b, i) => {
    if (b.index !== i + 1) throw new Error(`${where}: storage bindings are not 1..n (found ${b.index})`);
  });
  parsedCache.set(part.key, out);
  return out;
}

/**
 * Rename identifier tokens of `text` (not after a `.`): `names` maps to a new name, `arrays` maps a
 * workgroup array to its offset in the shared one (`a[i]` -> `fuse_sm[OFF + (i)]`).
 */
export function renameTokens(text: string, names: Map<string, string>, arrays: Map<string, number>): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const m = /[A-Za-z_][A-Za-z0-9_]*/y;
    m.lastIndex = i;
    const hit = /[A-Za-z_]/.test(text[i]) && (i === 0 || !/[A-Za-z0-9_]/.test(text[i - 1])) ? m.exec(text) : null;
    if (!hit) {
      out += text[i++];
      continue;
    }
    const id = hit[0];
    i += id.length;
    const member = /\.\s*$/.test(out.slice(-8));
    if (member) {
      out += id;
    } else if (arrays.has(id)) {
      let j = i;
      while (/\s/.test(text[j])) j++;
      if (text[j] !== '[') throw new Error(`workgroup array '${id}' used other than as '${id}[...]'`);
      // Find the matching ']'.
      let depth = 0;
      let k = j;
      for (; k < text.length; k++) {
        if (text[k] === '[') depth++;
        else if (text[k] === ']' && --depth === 0) break;
      }
      const inner = renameTokens(text.slice(j + 1, k), names, arrays);
      out += `fuse_sm[${arrays.get(id)}u + (${inner})]`;
      i = k + 1;
    } else {
      out += names.get(id) ?? id;
    }
  }
  return out;
}

interface FusedBinding {
  tensor: Tensor;
  type: string;
  access: 'read' | 'read_write';
}

/** Grid words of each part: x, y extents, first linear workgroup, count. */
function partGrids(parts: readonly FusionPart[]): { grids: number[][]; total: number } {
  let first = 0;
  const grids = parts.map((p) => {
    const [x, y = 1, z = 1] = p.workgroups;
    const g = [x, y, first, x * y * z];
    first += x * y * z;
    return g;
  });
  return { grids, total: first };
}

/**
 * One dispatch running `parts` side by side (see the file header). `maxPerDimension`: the device's
 * maxComputeWorkgroupsPerDimension (the fused grid is linear, folded into y past it).
 */
export function fuseHorizontally(name: string, parts: readonly FusionPart[], maxPerDimension: number): DispatchArgs {
  const parsed = parts.map((p, i) => parsePart(p, `${name}: part ${i} (${p.key})`));
  const wg = parsed[0].wg;
  for (const [i, pp] of parsed.entries())
    if (pp.wg !== wg) throw new Error(`${name}: part ${i} has ${pp.wg} threads per workgroup, part 0 ${wg}`);
  for (const [i, pp] of parsed.entries()) {
    if (pp.bindings.length !== parts[i].tensors.length)
      throw new Error(`${name}: part ${i} declares ${pp.bindings.length} bindings, given ${parts[i].tensors.length}`);
    if ((pp.paramsBody !== undefined) !== (parts[i].params !== undefined))
      throw new Error(`${name}: part ${i}: uniform params declared and given must agree`);
  }
  // Bindings, deduplicated by tensor storage.
  const fused: FusedBinding[] = [];
  const map: number[][] = parts.map(() => []);
  for (const [i, part] of parts.entries()) {
    for (const [b, t] of part.tensors.entries()) {
      const decl = parsed[i].bindings[b];
      const same = fused.filter((f) => f.tensor.storage === t.storage);
      for (const f of same) {
        if (f.tensor.offset !== t.offset || f.tensor.numel !== t.numel)
          throw new Error(`${name}: part ${i} binding ${b + 1}: a different range of a buffer bound elsewhere`);
      }
      const writes = decl.access === 'read_write' || same.some((f) => f.access === 'read_write');
      if (writes && same.some((f) => f.type !== decl.type))
        throw new Error(
          `${name}: part ${i} binding ${b + 1}: a written tensor bound as ${decl.type} and as another type`,
        );
      let j = fused.findIndex((f) => f.tensor.storage === t.storage && f.type === decl.type);
      if (j < 0) {
        j = fused.length;
        fused.push({ tensor: t, type: decl.type, access: decl.access });
      }
      if (writes) for (const f of fused) if (f.tensor.storage === t.storage) f.access = 'read_write';
      map[i].push(j);
    }
  }
  const { grids, total } = partGrids(parts);
  const header = new Params().u32(...grids.flat());
  const words = new Uint32Array(4 * parts.length + parts.reduce((n, p) => n + (p.params?.byteLength ?? 0) / 4, 0));
  header.writeTo(words, 0);
  let at = 4 * parts.length;
  for (const p of parts) {
    if (!p.params) continue;
    p.params.writeTo(words, at);
    at += p.params.byteLength / 4;
  }
  const params = new Params().u32(...words);
  const sig = `${map.map((m) => m.join('.')).join('/')}:${fused.map((f) => f.access[5] ?? 'r').join('')}`;
  const nx = Math.min(total, maxPerDimension);
  return {
    kernel: {
      name,
      key: `fuse_${name}|${parts.map((p) => p.key).join('|')}|${sig}`,
      code: () => fusedWgsl(parsed, fused, map, wg),
    },
    tensors: fused.map((f) => f.tensor),
    params,
    workgroups: [Math.max(1, nx), Math.max(1, Math.ceil(total / Math.max(1, nx)))],
  };
}

function fusedWgsl(parsed: ParsedPart[], fused: FusedBinding[], map: number[][], wg: number): string {
  const lines: string[] = [...new Set(parsed.flatMap((pp) => pp.enables))];
  const members: string[] = [`grid: array<vec4<u32>, ${parsed.length}>`];
  const bodies: string[] = [];
  let smLength = 0;
  for (const [i, pp] of parsed.entries()) {
    const names = new Map<string, string>();
    const arrays = new Map<string, number>();
    if (pp.paramsName) {
      names.set(pp.paramsName, `Params_${i}`);
      names.set('p', `fuse_P.q${i}`);
      lines.push(`struct Params_${i} { ${pp.paramsBody} };`);
      members.push(`@align(16) q${i}: Params_${i}`);
    }
    for (const [b, decl] of pp.bindings.entries()) names.set(decl.name, `fuse_b${map[i][b]}`);
    let off = 0;
    for (const a of pp.workgroup) {
      arrays.set(a.name, off);
      off += a.length;
    }
    smLength = Math.max(smLength, off);
    for (const item of pp.items) {
      const m = item.match(/^(?:fn|const)\s+(\w+)/);
      if (m) names.set(m[1], `fuse${i}_${m[1]}`);
    }
    const args = pp.builtins.map((b) => `${b.name}: ${b.type}`).join(', ');
    bodies.push(...pp.items.map((it) => renameTokens(it, names, arrays)));
    bodies.push(`fn fuse_part${i}(${args}) ${renameTokens(pp.entry, names, arrays)}`);
  }
  lines.push(`struct FusedParams { ${members.join(', ')} };`);
  lines.push('@group(0) @binding(0) var<uniform> fuse_P: FusedParams;');
  for (const [j, f] of fused.entries())
    lines.push(`@group(0) @binding(${j + 1}) var<storage, ${f.access}> fuse_b${j}: array<${f.type}>;`);
  if (smLength > 0) lines.push(`var<workgroup> fuse_sm: array<vec4<f32>, ${smLength}>;`);
  const calls = parsed.map((pp, i) => {
    const args = pp.builtins.map((b) =>
      b.kind === 'local_invocation_index' ? 'lid' : b.kind === 'workgroup_id' ? 'lw' : 'ln',
    );
    return `if (w >= g${i}.z && w < g${i}.z + g${i}.w) {
    let r = w - g${i}.z;
    let lw = vec3<u32>(r % g${i}.x, (r / g${i}.x) % g${i}.y, r / (g${i}.x * g${i}.y));
    let ln = vec3<u32>(g${i}.x, g${i}.y, g${i}.w / (g${i}.x * g${i}.y));
    fuse_part${i}(${args.join(', ')});
  }`;
  });
  return `${lines.join('\n')}
${bodies.join('\n\n')}

@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  ${parsed.map((_, i) => `let g${i} = fuse_P.grid[${i}];`).join('\n  ')}
  ${calls.join(' else ')}
}
`;
}
