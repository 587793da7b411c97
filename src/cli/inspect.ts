/**
 * `kimi-linear inspect`: a config's layer map, parameter counts and cache sizes by formula, and (with a
 * checkpoint directory) the headers' tensors cross-checked against that formula. Reads only headers.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type Checkpoint, INDEX_FILE, SINGLE_FILE } from '../io/safetensors/checkpoint.js';
import { isFile, openCheckpoint } from '../io/safetensors/node.js';
import { parseMlaCacheDtype } from '../kernels/mla/int8Layout.js';
import { type InspectReport, inspectConfig } from '../model/inspect.js';
import { loadKimiConfig } from '../model/loadConfig.js';
import { printJson, renderTable } from './shared.js';

interface InspectOptions {
  model?: string;
  config?: string;
  json?: boolean;
  cacheDtype: string;
}

function exact(n: number): string {
  return n.toLocaleString('en-US');
}

function approx(n: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${(n / v).toFixed(2)} ${u}`;
  return String(n);
}

function bytes(n: number): string {
  const units: [number, string][] = [
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [v, u] of units) if (n >= v) return `${exact(n)} B (${(n / v).toFixed(2)} ${u})`;
  return `${exact(n)} B`;
}

/** Resolve --model / --config into a config path and an optional checkpoint location. */
async function resolveInputs(opts: InspectOptions): Promise<{ configPath: string; checkpointPath?: string }> {
  if (!opts.model && !opts.config)
    throw new Error('inspect: give --model DIR (config.json + checkpoint) or --config FILE');
  if (!opts.model) return { configPath: opts.config! };
  const s = await stat(opts.model).catch(() => undefined);
  if (!s) throw new Error(`--model ${opts.model}: no such file or directory`);
  if (s.isFile()) {
    if (opts.model.endsWith('.json')) return { configPath: opts.model };
    if (!opts.config) throw new Error(`--model ${opts.model} is a file: pass its config with --config FILE`);
    return { configPath: opts.config, checkpointPath: opts.model };
  }
  const configPath = opts.config ?? join(opts.model, 'config.json');
  const hasWeights = (await isFile(join(opts.model, INDEX_FILE))) || (await isFile(join(opts.model, SINGLE_FILE)));
  return { configPath, checkpointPath: hasWeights ? opts.model : undefined };
}

export async function runInspect(opts: InspectOptions): Promise<InspectReport> {
  const cacheDtype = parseMlaCacheDtype('--cache-dtype', opts.cacheDtype);
  const { configPath, checkpointPath } = await resolveInputs(opts);
  const cfg = await loadKimiConfig(configPath);
  let ckpt: Checkpoint | undefined;
  try {
    if (checkpointPath) ckpt = await openCheckpoint(checkpointPath);
    const summary = ckpt && {
      files: ckpt.files,
      tensors: ckpt.tensors().map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype })),
    };
    return inspectConfig(cfg, configPath, { cacheDtype, checkpoint: summary });
  } finally {
    await ckpt?.close();
  }
}

function printReport(r: InspectReport): void {
  const c = r.counts;
  console.log(`config: ${r.config}`);
  console.log(`layers: ${c.layers} (KDA ${c.kda}, MLA ${c.mla}; dense ${c.dense}, MoE ${c.moe})`);
  console.log(renderTable(r.layers.map((l) => ({ layer: String(l.index), mixer: l.mixer, ffn: l.ffn }))));
  const p = r.params;
  console.log('\nparameters (by formula from the config)');
  console.log(
    renderTable([
      { what: 'total', count: exact(p.total), approx: approx(p.total) },
      { what: 'activated per token', count: exact(p.activated), approx: approx(p.activated) },
      { what: 'embed_tokens', count: exact(p.embedding), approx: approx(p.embedding) },
      { what: 'lm_head', count: exact(p.lmHead), approx: approx(p.lmHead) },
    ]),
  );
  const k = r.cache;
  console.log(`\ncache (${k.dtype}; KDA state always f32)`);
  console.log(
    renderTable([
      { what: `MLA latent per token (${k.mlaLayers} MLA layers)`, size: bytes(k.mlaBytesPerToken) },
      { what: `if all ${k.mlaLayers + k.kdaLayers} layers were MLA`, size: bytes(k.allMlaBytesPerToken) },
      { what: 'reduction per token', size: `${(100 * k.mlaReduction).toFixed(1)}%` },
      { what: 'KDA state per layer (H*d*d f32)', size: bytes(k.kdaStateBytesPerLayer) },
      { what: 'KDA conv tails per layer ((W-1)*3*H*d)', size: bytes(k.kdaConvBytesPerLayer) },
      { what: `KDA per sequence (${k.kdaLayers} layers)`, size: bytes(k.kdaBytesPerSequence) },
    ]),
  );
  const ck = r.checkpoint;
  if (!ck) return;
  console.log(`\ncheckpoint: ${ck.files.length} file(s), ${exact(ck.tensors)} tensors`);
  console.log(
    renderTable([
      { what: 'parameters in safetensors headers', count: exact(ck.params) },
      { what: 'parameters by formula', count: exact(ck.formulaParams) },
      {
        what: 'dtypes',
        count: Object.entries(ck.dtypes)
          .map(([d, n]) => `${d} x${n}`)
          .join(', '),
      },
    ]),
  );
  if (ck.matches) console.log('headers match the config: every expected tensor present with its shape');
  else {
    console.log('MISMATCH between the checkpoint and the config:');
    if (ck.missingCount) console.log(`  missing (${ck.missingCount}): ${ck.missing.join(', ')}`);
    if (ck.unexpectedCount) console.log(`  unexpected (${ck.unexpectedCount}): ${ck.unexpected.join(', ')}`);
    for (const m of ck.shapeMismatches) {
      console.log(`  ${m.name}: shape [${m.found.join(', ')}], expected [${m.expected.join(', ')}]`);
    }
  }
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('layer map, parameter counts and cache sizes of a model config (and a checkpoint cross-check)')
    .option('--model <dir>', 'model directory: config.json plus model.safetensors or a sharded index')
    .option('--config <file>', 'a config.json to inspect on its own (or to use for --model)')
    .option('--cache-dtype <dtype>', 'MLA latent cache dtype: bf16 | f32 | int8 (per-token absmax codes) | f16', 'bf16')
    .option('--json', 'print a JSON object')
    .action(async (opts: InspectOptions) => {
      const report = await runInspect(opts);
      if (opts.json) printJson(report);
      else printReport(report);
    });
}
