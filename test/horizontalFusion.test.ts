/**
 * Horizontal fusion (src/gpu/horizontalFusion.ts): the WGSL rewriting on its own, then a toy pair of kernels
 * whose module-scope names collide (Params, p, a helper function, a workgroup array), one reading a tensor as
 * f32 and the other as vec4 (two read bindings of one buffer), both reading another one (deduplicated), each
 * writing its own output: fused into one dispatch they must write exactly what they write as two dispatches,
 * for 3-D and 1-D part grids, a part with no workgroups, and a fused grid folded into y.
 */
import { describe, expect, it } from 'vitest';
import { fuseHorizontally, renameTokens, topLevelItems } from '../src/gpu/horizontalFusion.js';
import { Params } from '../src/gpu/params.js';
import { gpuContext, hasGpu } from './helpers.js';

/** Part A: per workgroup (x, y, z) of a 3-D grid, a workgroup-memory sum of x over its 64 threads, times p.a. */
const A = /* wgsl */ `
struct Params { n: u32, a: f32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
var<workgroup> buf: array<vec4<f32>, 64>;
var<workgroup> tot: array<vec4<f32>, 1>;
fn scaled(v: f32) -> f32 { return v * p.a; } // a comment with buf[0] and p.n in it
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
  buf[lid] = vec4<f32>(x[(g * 64u + lid) % p.n] * w[lid % 4u], 0.0, 0.0, 1.0);
  workgroupBarrier();
  if (lid == 0u) {
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < 64u; i++) { s += buf[i]; }
    tot[0] = s;
  }
  workgroupBarrier();
  y[g * 64u + lid] = scaled(tot[0].x) + f32(wid.x) + 10.0 * f32(wid.y) + 100.0 * f32(wid.z) + tot[0].w;
}`;

/** Part B: x as vec4, its own Params, helper and workgroup array under A's names. */
const B = /* wgsl */ `
struct Params { b: f32, n4: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<vec4<f32>>;
var<workgroup> buf: array<vec4<f32>, 64>;
fn scaled(v: vec4<f32>) -> vec4<f32> { return v * p.b + vec4<f32>(w[0]); }
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  buf[63u - lid] = x[(wid.x * 64u + lid) % p.n4];
  workgroupBarrier();
  z[wid.x * 64u + lid] = scaled(buf[lid]) + vec4<f32>(f32(wid.x));
}`;

describe('horizontal fusion: WGSL rewriting', () => {
  it('splits a module into its top-level declarations, comments dropped', () => {
    const items = topLevelItems(A);
    expect(items.length).toBe(9);
    expect(items[0]).toBe('struct Params { n: u32, a: f32 };');
    expect(items[7]).toBe('fn scaled(v: f32) -> f32 { return v * p.a; }');
    expect(items[8].startsWith('@compute @workgroup_size(64)')).toBe(true);
  });

  it('renames tokens, not members; workgroup arrays to offsets of the shared one', () => {
    const names = new Map([
      ['p', 'fuse_P.q1'],
      ['x', 'fuse_b0'],
      ['scaled', 'fuse1_scaled'],
    ]);
    const arrays = new Map([['buf', 64]]);
    expect(renameTokens('let v = x[p.n] + buf[buf[i] .x] * 2u; q.x = scaled(0x1fu);', names, arrays)).toBe(
      'let v = fuse_b0[fuse_P.q1.n] + fuse_sm[64u + (fuse_sm[64u + (i)] .x)] * 2u; q.x = fuse1_scaled(0x1fu);',
    );
    expect(() => renameTokens('let b = &buf;', names, arrays)).toThrow(/workgroup array 'buf'/);
  });

  it('rejects what it cannot link: workgroup sizes, typed or ranged aliasing, reserved names, unknown declarations', () => {
    const t = { key: 'unused' } as never;
    const part = (key: string, code: string) => ({
      key,
      code: () => code,
      workgroups: [1] as const,
      tensors: [t, t, t],
      params: new Params(),
    });
    const wg32 = B.replace('@workgroup_size(64)', '@workgroup_size(32)');
    expect(() => fuseHorizontally('t', [part('a1', A), part('b32', wg32)], 65535)).toThrow(/threads per workgroup/);
    const alias = `alias F = f32;\n${B}`;
    expect(() => fuseHorizontally('t', [part('alias', alias)], 65535)).toThrow(/not supported: alias/);
    // One buffer written by A (y, f32) and bound by B as vec4 (z): one binding cannot have both types.
    const buf = { storage: {}, offset: 0, numel: 64 } as never;
    const other = () => ({ storage: {}, offset: 0, numel: 64 }) as never;
    const ab = (tA: never[], tB: never[]) =>
      fuseHorizontally(
        't',
        [
          { key: 'toyA', code: () => A, workgroups: [1], tensors: tA, params: new Params() },
          { key: 'toyB', code: () => B, workgroups: [1], tensors: tB, params: new Params() },
        ],
        65535,
      );
    expect(() => ab([other(), other(), buf], [other(), other(), buf])).toThrow(/written tensor bound as/);
    // Two ranges of one buffer, one of them written: WebGPU would reject the dispatch.
    const view = { storage: (buf as { storage: object }).storage, offset: 16, numel: 16 } as never;
    expect(() => ab([other(), other(), buf], [view, other(), other()])).toThrow(/different range of a buffer/);
    // The same tensor read by both as f32 (w): one binding.
    const w = other();
    expect(ab([other(), w, other()], [other(), w, other()]).tensors.length).toBe(5);
    const reserved = A.replace('let g', 'let fuse_x = 1u;\n  let g');
    expect(() => fuseHorizontally('t', [part('reserved', reserved)], 65535)).toThrow(/reserved name 'fuse_x'/);
  });

  it("hoists the parts' enable directives to the top of the fused module, once each", () => {
    const other = () => ({ storage: {}, offset: 0, numel: 64 }) as never;
    const withEnable = (key: string, code: string) => ({
      key,
      code: () => `enable subgroups;\n${code}`,
      workgroups: [1] as const,
      tensors: [other(), other(), other()],
      params: new Params(),
    });
    const code = fuseHorizontally('t', [withEnable('sgA', A), withEnable('sgB', B)], 65535).kernel.code?.() ?? '';
    expect(code.startsWith('enable subgroups;\n')).toBe(true);
    expect(code.match(/enable subgroups;/g)?.length).toBe(1);
  });
});

describe('horizontal fusion: a toy pair on the GPU', () => {
  it.skipIf(!hasGpu)('fused = separate, grids mapped back, a part with no workgroups, grid folded', async () => {
    const gpu = (await gpuContext())!;
    const n = 1000;
    const xs = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
    const x = gpu.fromHost(xs, [n]);
    const w = gpu.fromHost(Float32Array.from([0.5, -1, 2, 0.25]), [4]);
    const gridA = [3, 2, 2] as const;
    const nA = 64 * 12;
    const gridB = [5] as const;
    const nB = 64 * 5;
    const pA = () => new Params().u32(n).f32(0.75);
    const pB = () => new Params().f32(-1.5).u32(n / 4);
    const separate = async () => {
      const y = gpu.zeros([nA]);
      const z = gpu.zeros([nB * 4]);
      gpu.dispatch({
        kernel: { name: 'toyA', key: 'toyA', code: () => A },
        tensors: [x, w, y],
        params: pA(),
        workgroups: gridA,
      });
      gpu.dispatch({
        kernel: { name: 'toyB', key: 'toyB', code: () => B },
        tensors: [x, w, z],
        params: pB(),
        workgroups: gridB,
      });
      return [await y.toFloat32(), await z.toFloat32()];
    };
    const fused = async (max: number, offB = false) => {
      const y = gpu.zeros([nA]);
      const z = gpu.zeros([nB * 4]);
      const d = fuseHorizontally(
        'toyAB',
        [
          { key: 'toyA', code: () => A, workgroups: gridA, tensors: [x, w, y], params: pA() },
          { key: 'toyB', code: () => B, workgroups: offB ? [0] : gridB, tensors: [x, w, z], params: pB() },
        ],
        max,
      );
      // x twice (f32 and vec4, both read), w once, y, z: 5 storage bindings.
      expect(d.tensors.length).toBe(5);
      gpu.dispatch(d);
      return [await y.toFloat32(), await z.toFloat32()];
    };
    const [yS, zS] = await separate();
    // Sanity: the kernels did write something else than zeros (the ids enter every value, so a wrong map of
    // the fused grid back to the parts' grids changes them).
    expect(yS.some((v) => v !== 0) && zS.some((v) => v !== 0)).toBe(true);
    const [yF, zF] = await fused(65535);
    expect(yF).toEqual(yS);
    expect(zF).toEqual(zS);
    // 17 workgroups folded into a [4, 5] grid (3 past the end do nothing).
    const [yG, zG] = await fused(4);
    expect(yG).toEqual(yS);
    expect(zG).toEqual(zS);
    const [yO, zO] = await fused(65535, true);
    expect(yO).toEqual(yS);
    expect(zO).toEqual(new Float32Array(nB * 4));
    x.dispose();
    w.dispose();
  });
});
