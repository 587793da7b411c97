/**
 * Gradients by finite differences (f64 references, central differences) on a small varlen case that
 * crosses a chunk boundary, for the recurrent and the chunked backward and through the layer-level
 * prep (l2norm, gate, sigmoid); and extreme gates stay finite on cpu and WebGPU.
 */
import { describe, expect, it } from 'vitest';
import {
  type KdaDims,
  kdaBackwardReference,
  kdaChunkBackwardReference,
  kdaLayer,
  kdaLayerBackward,
  kdaPrepBackwardReference,
  kdaPrepReference,
  kdaRecurrentReference,
} from '../src/kernels/kda/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { randomCase } from './kda-random.js';

const [H, K, V] = [1, 4, 3];
const cu = [0, 6, 76];
const T = cu[2];
const N = 2;

describe('kda gradients vs finite differences', () => {
  for (const gk of [K, 1]) {
    it(`core backward (recurrent and chunked), gate width ${gk}`, () => {
      const c = randomCase(3, T, H, K, V, gk, 0.3);
      const rng = new Rng(4);
      const S0 = rng.normalArray(N * H * K * V, 0.5);
      const dS = rng.normalArray(N * H * K * V);
      const d: KdaDims = { H, K, V, GK: gk, cu };
      const scale = K ** -0.5;
      const inputs: Record<string, Float64Array> = {
        q: Float64Array.from(c.q),
        k: Float64Array.from(c.k),
        v: Float64Array.from(c.v),
        g: Float64Array.from(c.g),
        beta: Float64Array.from(c.beta),
        S0: Float64Array.from(S0),
      };
      const loss = () => {
        const r = kdaRecurrentReference(inputs.q, inputs.k, inputs.v, inputs.g, inputs.beta, d, scale, inputs.S0);
        let s = 0;
        for (let i = 0; i < r.o.length; i++) s += r.o[i] * c.dO[i];
        for (let i = 0; i < r.S.length; i++) s += r.S[i] * dS[i];
        return s;
      };
      const args = [inputs.q, inputs.k, inputs.v, inputs.g, inputs.beta, c.dO, d, scale, inputs.S0, dS] as const;
      for (const [label, run] of [
        ['recurrent', kdaBackwardReference],
        ['chunked', kdaChunkBackwardReference],
      ] as const) {
        const gr = run(...args);
        const analytic: Record<string, Float32Array> = {
          q: gr.dq,
          k: gr.dk,
          v: gr.dv,
          g: gr.dg,
          beta: gr.dbeta,
          S0: gr.dS0,
        };
        for (const name of Object.keys(inputs)) {
          const x = inputs[name];
          const pick = new Rng(name.length * 13 + gk);
          const got: number[] = [];
          const want: number[] = [];
          for (let n = 0; n < 6; n++) {
            const i = pick.int(x.length);
            const x0 = x[i];
            const eps = 1e-3;
            x[i] = x0 + eps;
            const lp = loss();
            x[i] = x0 - eps;
            const lm = loss();
            x[i] = x0;
            want.push((lp - lm) / (2 * eps));
            got.push(analytic[name][i]);
          }
          expectClose(got, want, 1e-2, `${label} d${name}`);
        }
      }
    });
  }

  it('layer-level prep backward (l2norm, gate, sigmoid)', () => {
    const rng = new Rng(9);
    const rows = 5;
    const x = {
      q: Float64Array.from(rng.normalArray(rows * K)),
      k: Float64Array.from(rng.normalArray(rows * K)),
      g: Float64Array.from(rng.normalArray(rows * K, 2)),
      beta: Float64Array.from(rng.normalArray(rows, 2)),
      A_log: Float64Array.from([0.7]),
      dt_bias: Float64Array.from(rng.normalArray(K)),
    };
    const w = {
      q: rng.normalArray(rows * K),
      k: rng.normalArray(rows * K),
      g: rng.normalArray(rows * K),
      b: rng.normalArray(rows),
    };
    const dims = { T: rows, H: 1, K, GK: K };
    const loss = () => {
      const p = kdaPrepReference(x.q, x.k, x.g, x.beta, x.A_log, x.dt_bias, dims);
      let s = 0;
      for (let i = 0; i < rows * K; i++) s += p.q[i] * w.q[i] + p.k[i] * w.k[i] + p.g[i] * w.g[i];
      for (let i = 0; i < rows; i++) s += p.beta[i] * w.b[i];
      return s;
    };
    const b = kdaPrepBackwardReference(
      x.q,
      x.k,
      x.g,
      x.beta,
      x.A_log,
      x.dt_bias,
      { dq: w.q, dk: w.k, dg: w.g, dbeta: w.b },
      dims,
    );
    const analytic: Record<string, Float32Array> = {
      q: b.dq,
      k: b.dk,
      g: b.dg_raw,
      beta: b.dbeta_raw,
      A_log: b.dA_log,
      dt_bias: b.ddt_bias,
    };
    for (const name of Object.keys(x) as (keyof typeof x)[]) {
      const arr = x[name];
      const got: number[] = [];
      const want: number[] = [];
      for (let i = 0; i < Math.min(arr.length, 6); i++) {
        const x0 = arr[i];
        arr[i] = x0 + 1e-3;
        const lp = loss();
        arr[i] = x0 - 1e-3;
        const lm = loss();
        arr[i] = x0;
        want.push((lp - lm) / 2e-3);
        got.push(analytic[name][i]);
      }
      expectClose(got, want, 1e-2, `d${name}`);
    }
  });
});

describe('kda: extreme gates stay finite', () => {
  // g_raw up to +-30 with A_log = log 16 (log decays down to -480 per step), beta_raw +-20 (beta near 0
  // and 1), 300 tokens: every exp() argument must stay <= 0, so nothing overflows.
  const [Hx, Kx, Vx, Tx] = [2, 16, 8, 300];
  const rng = new Rng(12);
  const q = rng.normalArray(Tx * Hx * Kx);
  const k = rng.normalArray(Tx * Hx * Kx);
  const v = rng.normalArray(Tx * Hx * Vx);
  const gRaw = new Float32Array(Tx * Hx * Kx);
  for (let i = 0; i < gRaw.length; i++) gRaw[i] = [30, -30, 0.5, -5][i % 4] * (i % 7 === 0 ? -1 : 1);
  const bRaw = new Float32Array(Tx * Hx);
  for (let i = 0; i < bRaw.length; i++) bRaw[i] = [20, -20, 0][i % 3];
  const A_log = Float32Array.from([Math.log(16), -3]);
  const dt = rng.normalArray(Hx * Kx);
  const dO = rng.normalArray(Tx * Hx * Vx);
  const p = kdaPrepReference(q, k, gRaw, bRaw, A_log, dt, { T: Tx, H: Hx, K: Kx, GK: Kx });
  const ref = kdaRecurrentReference(p.q, p.k, v, p.g, p.beta, { H: Hx, K: Kx, V: Vx, GK: Kx, cu: [0, Tx] }, Kx ** -0.5);
  for (const [name, gpu, mode] of [
    ['cpu chunk', false, 'chunk'],
    ['webgpu recurrent', true, 'recurrent'],
    ['webgpu chunk', true, 'chunk'],
  ] as const) {
    it.skipIf(gpu && !hasGpu)(name, async () => {
      const d: Device = gpu ? (await gpuContext())! : cpu;
      const args = [
        d.fromHost(q, [1, Tx, Hx, Kx]),
        d.fromHost(k, [1, Tx, Hx, Kx]),
        d.fromHost(v, [1, Tx, Hx, Vx]),
        d.fromHost(gRaw, [1, Tx, Hx, Kx]),
        d.fromHost(bRaw, [1, Tx, Hx]),
        d.fromHost(A_log, [Hx]),
        d.fromHost(dt, [Hx * Kx]),
      ] as const;
      const r = kdaLayer(...args, { mode });
      const o = await r.o.toFloat32();
      expect(o.every(Number.isFinite)).toBe(true);
      expectClose(o, ref.o, mode === 'chunk' ? 2e-3 : 1e-4, 'o');
      expectClose(await r.finalState!.toFloat32(), ref.S, mode === 'chunk' ? 2e-3 : 1e-4, 'S');
      const b = kdaLayerBackward(...args, d.fromHost(dO, [1, Tx, Hx, Vx]), { mode });
      const cpuArgs = args.map((t, i) => cpu.fromHost([q, k, v, gRaw, bRaw, A_log, dt][i], t.shape));
      const want = kdaLayerBackward(...(cpuArgs as unknown as typeof args), cpu.fromHost(dO, [1, Tx, Hx, Vx]), {
        mode: 'recurrent',
      });
      for (const [n, t] of Object.entries(b)) {
        if (!t) continue;
        const a = await t.toFloat32();
        expect(a.every(Number.isFinite), `${n} finite`).toBe(true);
        expectClose(a, await want[n as keyof typeof want]!.toFloat32(), 3e-3, n);
      }
    });
  }
});
