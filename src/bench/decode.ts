/**
 * `kimi-linear bench decode`: time per output token of the hybrid model and of the same model with every
 * layer MLA (the report's baseline), at given context lengths, in one run. Without a checkpoint the
 * weights are random and made on the GPU; the cache is filled synthetically to the context length (its
 * contents do not change the work a decode step does). TPOT is host wall time per `Session.step`: the
 * whole step, including reading the logits back, as a user of `generate` sees it.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import { GpuContext } from '../gpu/context.js';
import { openCheckpoint } from '../io/safetensors/index.js';
import { type KimiLinearConfig, parseKimiConfig } from '../model/config.js';
import { KimiLinearModel } from '../model/forward.js';
import { randomModelWeights } from '../model/randomWeights.js';
import { Session } from '../model/session.js';
import { loadModelWeights } from '../model/weights.js';
import { cpu } from '../tensor/cpuDevice.js';
import type { Device } from '../tensor/tensor.js';
import { profileDecodeStep } from './decodeProfile.js';
import { machine, openBenchDevice, parseList } from './harness.js';

const PRESETS: Record<string, string> = {
  'kimi-linear-48b-a3b': '../../fixtures/configs/kimi-linear-48b-a3b.json',
};

/** The same model with every layer full attention. */
function allMla(json: Record<string, unknown>): Record<string, unknown> {
  const L = json.num_hidden_layers as number;
  const lac = { ...(json.linear_attn_config as Record<string, unknown>) };
  lac.kda_layers = [];
  lac.full_attn_layers = Array.from({ length: L }, (_, i) => i + 1);
  return { ...json, linear_attn_config: lac };
}

function weightBytes(model: KimiLinearModel): number {
  let b = 0;
  const add = (n: number, dtype: string) => {
    b += n * (dtype === 'bf16' ? 2 : 4);
  };
  for (const t of model.weights.tensors.values()) add(t.numel, t.dtype);
  for (const e of model.weights.experts.values()) for (const t of [e.w1, e.w2, e.w3]) add(t.numel, t.dtype);
  return b;
}

export interface DecodeBenchOptions {
  contexts: number[];
  steps: number;
  cacheDtype: 'f32' | 'bf16';
  weightsDtype: 'f32' | 'bf16';
  /** Which models to run (default both). */
  variants?: ('hybrid' | 'all-MLA')[];
  /** Also time each kernel of one step per context (a timestamped pass per dispatch). */
  profile?: boolean;
}

async function timeVariant(name: string, model: KimiLinearModel, o: DecodeBenchOptions, device: Device) {
  const rows: Record<string, unknown>[] = [];
  for (const C of o.contexts) {
    const s = new Session(model, { maxLength: C + o.steps + 4, cacheDtype: o.cacheDtype });
    s.fillSynthetic(C);
    await s.step(1);
    await s.step(2);
    const t0 = performance.now();
    let recordMs = 0;
    for (let i = 0; i < o.steps; i++) {
      await s.step(3 + (i % 100));
      recordMs += s.lastStep.recordMs;
    }
    const ms = (performance.now() - t0) / o.steps;
    const profile =
      o.profile && device instanceof GpuContext ? await profileDecodeStep(device, s.batchSession, [7]) : undefined;
    rows.push({
      model: name,
      context: C,
      batch: 1,
      tpotMs: ms,
      // Host time spent recording the step's dispatches (the rest is GPU execution and the readback).
      recordMs: recordMs / o.steps,
      tokensPerS: 1000 / ms,
      cacheGB: s.cacheBytes() / 1e9,
      ...(profile ? { profile } : {}),
    });
    s.dispose();
    if (device instanceof GpuContext) await device.sync();
  }
  return rows;
}

export async function benchDecode(
  device: Device,
  json: Record<string, unknown>,
  o: DecodeBenchOptions,
  checkpoint?: string,
) {
  const rows: Record<string, unknown>[] = [];
  const weights: Record<string, number> = {};
  for (const [name, cfgJson] of [
    ['hybrid', json],
    ['all-MLA', allMla(json)],
  ] as const) {
    if (o.variants && !o.variants.includes(name)) continue;
    const cfg: KimiLinearConfig = parseKimiConfig(cfgJson, `${name} config`);
    let w: Awaited<ReturnType<typeof loadModelWeights>>;
    if (checkpoint && name === 'hybrid') {
      const ckpt = await openCheckpoint(checkpoint);
      w = await loadModelWeights(ckpt, cfg, device, { dtype: o.weightsDtype });
      await ckpt.close();
    } else w = randomModelWeights(cfg, device, o.weightsDtype);
    const model = new KimiLinearModel(cfg, w);
    weights[name] = weightBytes(model);
    rows.push(...(await timeVariant(name, model, o, device)));
    w.dispose();
    if (device instanceof GpuContext) {
      await device.sync();
      device.pool.trim();
    }
  }
  const ratios = o.contexts.flatMap((C) => {
    const h = rows.find((r) => r.model === 'hybrid' && r.context === C);
    const m = rows.find((r) => r.model === 'all-MLA' && r.context === C);
    return h && m ? [{ context: C, allMlaOverHybrid: (m.tpotMs as number) / (h.tpotMs as number) }] : [];
  });
  return {
    bench: 'decode',
    machine: device instanceof GpuContext ? machine(device) : { backend: 'cpu', date: new Date().toISOString() },
    weights: checkpoint ? `checkpoint ${checkpoint} (hybrid), random (all-MLA)` : 'random, made on the device',
    weightsGB: Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, v / 1e9])),
    cacheDtype: o.cacheDtype,
    rows,
    ratios,
    notes: [
      'batch 1 only: decoding several sequences together is not implemented yet',
      'prefill not measured in this benchmark',
    ],
  };
}

export function registerDecodeBench(bench: Command): void {
  const cmd = bench
    .command('decode')
    .description('time per output token, hybrid vs all-MLA, at given context lengths (random weights unless --model)')
    .option('--model <dir>', 'checkpoint directory (its config; the all-MLA baseline gets random weights)')
    .option('--config <file>', 'config.json to build with random weights')
    .option('--preset <name>', `a bundled config: ${Object.keys(PRESETS).join(', ')}`)
    .option('--context <n,...>', 'context lengths (tokens already in the cache)', '4096')
    .option('--batch <n>', 'sequences decoded together (only 1 for now)', '1')
    .option('--steps <n>', 'timed decode steps per context', '16')
    .option('--cache-dtype <d>', 'MLA latent cache: bf16 | f32', 'bf16')
    .option('--weights-dtype <d>', 'matrices: bf16 | f32', 'bf16')
    .option('--variants <list>', 'hybrid, all-MLA or both', 'hybrid,all-MLA')
    .option('--backend <b>', 'webgpu | cpu', 'webgpu')
    .option('--profile', 'also time each kernel of one step per context (GPU timestamps per dispatch)')
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(
    async (opts: Record<string, string> & GpuFlagOptions & { json?: boolean; profile?: boolean }) => {
      const sources = [opts.model, opts.config, opts.preset].filter(Boolean);
      if (sources.length !== 1) throw new Error('bench decode: give exactly one of --model, --config, --preset');
      if (opts.batch !== '1')
        throw new Error(`bench decode: --batch ${opts.batch}: only batch 1 is implemented so far`);
      for (const [k, v] of [
        ['--cache-dtype', opts.cacheDtype],
        ['--weights-dtype', opts.weightsDtype],
      ])
        if (v !== 'bf16' && v !== 'f32') throw new Error(`${k}: '${v}' is not bf16 or f32`);
      let file = opts.config ?? (opts.model ? `${opts.model}/config.json` : undefined);
      if (opts.preset) {
        const rel = PRESETS[opts.preset];
        if (!rel) throw new Error(`--preset: unknown '${opts.preset}' (known: ${Object.keys(PRESETS).join(', ')})`);
        file = new URL(rel, import.meta.url).pathname;
      }
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(await readFile(file!, 'utf8'));
      } catch (e) {
        throw new Error(`${file}: cannot read the config (${(e as Error).message})`);
      }
      const device: Device = opts.backend === 'cpu' ? cpu : await openBenchDevice(opts);
      const result = await benchDecode(
        device,
        json,
        {
          contexts: parseList(opts.context),
          steps: parseList(opts.steps)[0],
          cacheDtype: opts.cacheDtype as 'bf16' | 'f32',
          weightsDtype: opts.weightsDtype as 'bf16' | 'f32',
          profile: !!opts.profile,
          variants: opts.variants.split(',').map((v) => {
            if (v !== 'hybrid' && v !== 'all-MLA') throw new Error(`--variants: '${v}' is not hybrid or all-MLA`);
            return v;
          }),
        },
        opts.model,
      );
      if (opts.json) return printJson(result);
      console.log(renderTable(result.rows));
      console.log(renderTable(result.ratios));
      console.log(`weights (GB): ${JSON.stringify(result.weightsGB)}`);
    },
  );
}
