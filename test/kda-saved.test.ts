/**
 * The GPU backward with the forward's kept intermediates (`saveForBackward` + `opts.saved`) against the
 * backward that recomputes them: the same kernels on the same intermediates, so every gradient must agree
 * bit for bit (no atomics anywhere in the KDA kernels). Core and layer forms on awkward lengths (a single
 * token, a partial chunk, one short of and one past a chunk, three chunks), a varlen batch with an empty
 * sequence, the scalar gate; initial state and dS given, so dS0 is compared too. Also: the forward output
 * is the same with and without saving, the kept bytes are kdaSavedBytes, and a set serves one backward of
 * its own problem only. K16/V8 as the other KDA tests (kernels already compiled by them).
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import {
  type KdaSaved,
  kdaCore,
  kdaCoreBackward,
  kdaLayer,
  kdaLayerBackward,
  kdaSavedBytes,
} from '../src/kernels/kda/index.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu } from './helpers.js';
import { randomCase } from './kda-random.js';

interface Case {
  lens: number[];
  GK?: number;
}

const cases: Case[] = [
  ...[1, 7, 63, 65, 130].map((T) => ({ lens: [T] })),
  { lens: [5, 70, 0, 58] },
  { lens: [130], GK: 1 },
];
const [H, K, V] = [2, 16, 8];

function expectBitwise(a: Float32Array, b: Float32Array, what: string): void {
  expect(a.length, what).toBe(b.length);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
      bad++;
      if (first < 0) first = i;
    }
  }
  expect(bad, `${what}: ${bad} of ${a.length} differ (first at ${first}: ${a[first]} vs ${b[first]})`).toBe(0);
}

async function compareGrads(
  saved: Record<string, Tensor | undefined>,
  recomputed: Record<string, Tensor | undefined>,
): Promise<void> {
  for (const name of Object.keys(recomputed)) {
    const r = recomputed[name];
    if (!r) continue;
    const s = saved[name];
    if (!s) throw new Error(`gradient ${name} missing with the saved set`);
    expectBitwise(await s.toFloat32(), await r.toFloat32(), name);
    s.dispose();
    r.dispose();
  }
}

function problem(gpu: GpuContext, c: Case) {
  const GK = c.GK ?? K;
  const N = c.lens.length;
  const cu = [0];
  for (const l of c.lens) cu.push(cu[cu.length - 1] + l);
  const T = cu[N];
  const r = randomCase(T * 7 + N + GK, T, H, K, V, GK);
  const rng = new Rng(T + 11);
  const gShape = GK === 1 ? [1, T, H] : [1, T, H, K];
  return {
    T,
    N,
    GK,
    q: gpu.fromHost(r.q, [1, T, H, K]),
    k: gpu.fromHost(r.k, [1, T, H, K]),
    v: gpu.fromHost(r.v, [1, T, H, V]),
    g: gpu.fromHost(r.g, gShape),
    // Layer form: raw gate pre-activations and beta logits (any sign).
    gRaw: gpu.fromHost(rng.normalArray(T * H * GK), gShape),
    betaRaw: gpu.fromHost(rng.normalArray(T * H), [1, T, H]),
    A_log: gpu.fromHost(rng.normalArray(H, 0.5), [H]),
    dt_bias: gpu.fromHost(rng.normalArray(H * GK, 0.5), [H * GK]),
    beta: gpu.fromHost(r.beta, [1, T, H]),
    dO: gpu.fromHost(r.dO, [1, T, H, V]),
    opts: {
      mode: 'chunk' as const,
      cuSeqlens: N > 1 ? gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32') : undefined,
      initialState: gpu.fromHost(rng.normalArray(N * H * K * V, 0.5), [N, H, K, V]),
      dS: gpu.fromHost(rng.normalArray(N * H * K * V), [N, H, K, V]),
    },
  };
}

describe('kda backward with the forward kept intermediates = backward that recomputes them (bitwise)', () => {
  for (const c of cases) {
    const name = `lens ${c.lens.join('+')}${c.GK === 1 ? ', scalar gate' : ''}`;
    it.skipIf(!hasGpu)(
      `core form, ${name}`,
      async () => {
        const gpu = (await gpuContext())!;
        const x = problem(gpu, c);
        const plain = kdaCore(x.q, x.k, x.v, x.g, x.beta, x.opts);
        const fwd = kdaCore(x.q, x.k, x.v, x.g, x.beta, { ...x.opts, saveForBackward: true });
        expect(fwd.saved).toBeDefined();
        expect(fwd.saved!.bytes).toBe(kdaSavedBytes({ T: x.T, N: x.N, H, K, V, GK: x.GK }, false));
        expectBitwise(await fwd.o.toFloat32(), await plain.o.toFloat32(), 'o');
        expectBitwise(await fwd.finalState!.toFloat32(), await plain.finalState!.toFloat32(), 'final state');
        const a = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, x.dO, { ...x.opts, saved: fwd.saved });
        const b = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, x.dO, x.opts);
        await compareGrads({ ...a }, { ...b });
        // A set serves one backward: it took dA in place.
        expect(() => kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, x.dO, { ...x.opts, saved: fwd.saved })).toThrow(
          /already served a backward/,
        );
        fwd.saved!.dispose();
        for (const t of [plain.o, plain.finalState, fwd.o, fwd.finalState]) t?.dispose();
      },
      300_000,
    );
    it.skipIf(!hasGpu)(
      `layer form, ${name}`,
      async () => {
        const gpu = (await gpuContext())!;
        const x = problem(gpu, c);
        const args = [x.q, x.k, x.v, x.gRaw, x.betaRaw, x.A_log, x.dt_bias] as const;
        const fwd = kdaLayer(...args, { ...x.opts, saveForBackward: true });
        expect(fwd.saved!.bytes).toBe(kdaSavedBytes({ T: x.T, N: x.N, H, K, V, GK: x.GK }, true));
        const a = kdaLayerBackward(...args, x.dO, { ...x.opts, saved: fwd.saved });
        const b = kdaLayerBackward(...args, x.dO, x.opts);
        await compareGrads({ ...a }, { ...b });
        fwd.saved!.dispose();
        for (const t of [fwd.o, fwd.finalState]) t?.dispose();
      },
      300_000,
    );
  }

  it.skipIf(!hasGpu)('a set made for another problem or form is refused; auto mode saves at any length', async () => {
    const gpu = (await gpuContext())!;
    const x = problem(gpu, { lens: [7] });
    // 'auto' would run the recurrent kernel at T = 7: saving makes it chunked (there is something to keep).
    const fwd = kdaCore(x.q, x.k, x.v, x.g, x.beta, { saveForBackward: true });
    const saved = fwd.saved as KdaSaved;
    expect(saved).toBeDefined();
    const args = [x.q, x.k, x.v, x.gRaw, x.betaRaw, x.A_log, x.dt_bias] as const;
    expect(() => kdaLayerBackward(...args, x.dO, { saved })).toThrow(/layer=false, this backward has layer=true/);
    expect(() => kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, x.dO, { saved, scale: 0.5 })).toThrow(/scale=/);
    const y = problem(gpu, { lens: [8] });
    expect(() => kdaCoreBackward(y.q, y.k, y.v, y.g, y.beta, y.dO, { saved })).toThrow(/Ttot=7/);
    // Nothing kept without the option, nor by the recurrent kernel.
    expect(kdaCore(x.q, x.k, x.v, x.g, x.beta).saved).toBeUndefined();
    expect(kdaCore(x.q, x.k, x.v, x.g, x.beta, { mode: 'recurrent', saveForBackward: true }).saved).toBeUndefined();
    saved.dispose();
  });
});
