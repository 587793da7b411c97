/**
 * Every case of fixtures/golden/kda-op.safetensors: layer-level and core forward (outputs and final
 * state) and every gradient, on cpu and on WebGPU, recurrent and chunked.
 * Tolerances (fixtures/golden/README.md): forward 1e-4 relative for sequential code, 2e-3 chunked;
 * gradients 3e-3 relative to max |value|.
 */
import { describe, it } from 'vitest';
import { type KdaMode, kdaCore, kdaCoreBackward, kdaLayer, kdaLayerBackward } from '../src/kernels/kda/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { kdaGolden } from './kda-golden.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';

const golden = await kdaGolden();
const CASES = ['a', 'b'] as const;

function load(dev: Device, name: string): Tensor {
  const t = golden.get(name);
  return dev.fromHost(t.data, t.shape);
}

/** The layer-level op's inputs of a case: q, k, v, g_raw, beta_raw, A_log, dt_bias. */
function layerInputs(d: Device, c: string) {
  const names = ['q', 'k', 'v', 'g_raw', 'beta_raw', 'A_log', 'dt_bias'] as const;
  return names.map((n) => load(d, `${c}.${n}`)) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
}

/** The core op's inputs of a case: q, k, v, g, beta. */
function coreInputs(d: Device, c: string) {
  const names = ['q', 'k', 'v', 'g', 'beta'] as const;
  return names.map((n) => load(d, `${c}.core.${n}`)) as [Tensor, Tensor, Tensor, Tensor, Tensor];
}

async function close(t: Tensor | undefined, name: string, tol: number, what: string): Promise<void> {
  if (!t) throw new Error(`${what}: missing result`);
  expectClose(await t.toFloat32(), golden.get(name).data, tol, what);
}

const targets: { name: string; gpu: boolean; mode: KdaMode; fwdTol: number }[] = [
  { name: 'cpu recurrent', gpu: false, mode: 'recurrent', fwdTol: 1e-4 },
  { name: 'cpu chunk', gpu: false, mode: 'chunk', fwdTol: 2e-3 },
  { name: 'webgpu recurrent', gpu: true, mode: 'recurrent', fwdTol: 1e-4 },
  { name: 'webgpu chunk', gpu: true, mode: 'chunk', fwdTol: 2e-3 },
];

describe('kda golden (kda-op.safetensors)', () => {
  for (const tg of targets) {
    for (const c of CASES) {
      const dev = async (): Promise<Device> => (tg.gpu ? (await gpuContext())! : cpu);
      const S0name = `${c}.S0`;
      it.skipIf(tg.gpu && !hasGpu)(`${tg.name}: case ${c} layer-level forward`, async () => {
        const d = await dev();
        const init = golden.has(S0name) ? load(d, S0name) : undefined;
        const r = kdaLayer(...layerInputs(d, c), { initialState: init, mode: tg.mode });
        await close(r.o, `${c}.o`, tg.fwdTol, `${c}.o`);
        await close(r.finalState, `${c}.S`, tg.fwdTol, `${c}.S`);
      });
      it.skipIf(tg.gpu && !hasGpu)(`${tg.name}: case ${c} core forward`, async () => {
        const d = await dev();
        const r = kdaCore(...coreInputs(d, c), { mode: tg.mode });
        await close(r.o, `${c}.core.o`, tg.fwdTol, `${c}.core.o`);
        await close(r.finalState, `${c}.core.S`, tg.fwdTol, `${c}.core.S`);
      });
      // The first WebGPU case b backward compiles its kernels on lavapipe: 98-119 s on a fresh clone with an empty
      // shader cache (this VM, sixth and seventh sessions), at the suite's 120 s default; hence a longer limit.
      it.skipIf(tg.gpu && !hasGpu)(`${tg.name}: case ${c} layer-level gradients`, { timeout: 300_000 }, async () => {
        const d = await dev();
        const init = golden.has(S0name) ? load(d, S0name) : undefined;
        const r = kdaLayerBackward(...layerInputs(d, c), load(d, `${c}.dO`), {
          initialState: init,
          dS: load(d, `${c}.dS`),
          mode: tg.mode,
        });
        await close(r.dq, `${c}.grad.q`, 3e-3, `${c}.grad.q`);
        await close(r.dk, `${c}.grad.k`, 3e-3, `${c}.grad.k`);
        await close(r.dv, `${c}.grad.v`, 3e-3, `${c}.grad.v`);
        await close(r.dg_raw, `${c}.grad.g_raw`, 3e-3, `${c}.grad.g_raw`);
        await close(r.dbeta_raw, `${c}.grad.beta_raw`, 3e-3, `${c}.grad.beta_raw`);
        await close(r.dA_log, `${c}.grad.A_log`, 3e-3, `${c}.grad.A_log`);
        await close(r.ddt_bias, `${c}.grad.dt_bias`, 3e-3, `${c}.grad.dt_bias`);
        if (init) await close(r.dS0, `${c}.grad.S0`, 3e-3, `${c}.grad.S0`);
      });
      it.skipIf(tg.gpu && !hasGpu)(`${tg.name}: case ${c} core gradients`, async () => {
        const d = await dev();
        const r = kdaCoreBackward(...coreInputs(d, c), load(d, `${c}.core.dO`), {
          dS: load(d, `${c}.dS`),
          mode: tg.mode,
        });
        for (const n of ['q', 'k', 'v', 'g', 'beta'] as const) {
          await close(r[`d${n}`], `${c}.core.grad.${n}`, 3e-3, `${c}.core.grad.${n}`);
        }
      });
    }
  }
});
