/**
 * `kimi-linear forward --model DIR --tokens FILE.json --out FILE.safetensors`: the full-sequence
 * forward of a batch of equal-length token lists; writes `logits` [B, T, V] f32 and `loss` [1] (mean
 * next-token cross-entropy over all B*(T-1) positions). With `--grad` also `grad.<name>` for every
 * parameter under its checkpoint name (routed experts one by one), d loss / d parameter in f32; the
 * router's e_score_correction_bias is not trained by gradient and gets zeros.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { writeSafetensors } from '../io/safetensors/index.js';
import { nextTokenLoss } from '../model/forward.js';
import { gradientsByCheckpointName, modelGradients } from '../model/gradients.js';
import { loadModel } from '../model/load.js';
import { openDevice, parseBackend } from '../runtime/backend.js';
import { acquireOptions, type GpuFlagOptions, gpuFlags, printJson } from './shared.js';

export async function readTokenBatch(file: string, vocab: number): Promise<{ ids: Int32Array; B: number; T: number }> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not readable JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(json) || !json.length || !json.every(Array.isArray)) {
    throw new Error(`${file}: expected a non-empty list of token-id lists, e.g. [[1, 2, 3], [4, 5, 6]]`);
  }
  const rows = json as unknown[][];
  const T = rows[0].length;
  if (T < 1) throw new Error(`${file}: list 0 is empty`);
  const ids = new Int32Array(rows.length * T);
  rows.forEach((row, b) => {
    if (row.length !== T)
      throw new Error(`${file}: list ${b} has ${row.length} tokens, list 0 has ${T} (lists must be of equal length)`);
    row.forEach((v, t) => {
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= vocab) {
        throw new Error(`${file}: list ${b} position ${t}: ${JSON.stringify(v)} is not a token id in [0, ${vocab})`);
      }
      ids[b * T + t] = v as number;
    });
  });
  return { ids, B: rows.length, T };
}

export function registerForward(program: Command): void {
  const cmd = program
    .command('forward')
    .description('full-sequence forward of equal-length token lists: logits and next-token loss to a safetensors file')
    .requiredOption('--model <dir>', 'checkpoint directory (config.json + safetensors)')
    .requiredOption('--tokens <file>', 'JSON list of equal-length token-id lists')
    .requiredOption('--out <file>', 'output .safetensors (logits [B,T,V] f32, loss [1])')
    .option('--backend <name>', 'webgpu | cpu | auto', 'auto')
    .option('--grad', 'also write grad.<name> (d loss / d parameter) for every parameter')
    .option('--checkpointing', 'with --grad: recompute each layer in backward instead of keeping activations')
    .option('--json', 'print a JSON summary');
  gpuFlags(cmd).action(
    async (
      o: {
        model: string;
        tokens: string;
        out: string;
        backend: string;
        grad?: boolean;
        checkpointing?: boolean;
        json?: boolean;
      } & GpuFlagOptions,
    ) => {
      const device = await openDevice({ backend: parseBackend(o.backend), ...acquireOptions(o) });
      const model = await loadModel(o.model, device);
      const V = model.cfg.vocab_size;
      const { ids, B, T } = await readTokenBatch(o.tokens, V);
      const t0 = performance.now();
      const { logits } = model.forward(device.fromHost(ids, [B, T], 'i32'));
      const values = await logits.toFloat32();
      const ms = performance.now() - t0;
      const loss = T > 1 ? nextTokenLoss(values, ids, B, T, V) : Number.NaN;
      const out = new Map<string, { dtype: 'f32'; shape: number[]; data: Float32Array }>([
        ['logits', { dtype: 'f32', shape: [B, T, V], data: values }],
        ['loss', { dtype: 'f32', shape: [1], data: new Float32Array([loss]) }],
      ]);
      let gradMs: number | undefined;
      if (o.grad) {
        if (T < 2) throw new Error(`${o.tokens}: --grad needs at least 2 tokens per list (got ${T})`);
        const g0 = performance.now();
        const r = modelGradients(model, device.fromHost(ids, [B, T], 'i32'), { checkpointing: o.checkpointing });
        const named = gradientsByCheckpointName(r.grads);
        for (const name of model.weights.tensors.keys()) {
          if (!named.has(name)) {
            const shape = [...model.w(name).shape];
            out.set(`grad.${name}`, { dtype: 'f32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
          }
        }
        for (const [name, t] of named)
          out.set(`grad.${name}`, { dtype: 'f32', shape: [...t.shape], data: await t.toFloat32() });
        gradMs = performance.now() - g0;
        for (const t of named.values()) t.dispose();
        r.grads.dispose();
        r.loss.dispose();
        for (const t of r.stats.values()) t.dispose();
      }
      await writeSafetensors(o.out, out);
      const summary = { backend: device.backend, B, T, V, loss, ms, gradMs, out: o.out };
      if (o.json) printJson(summary);
      else
        console.log(
          `${o.out}: logits [${B}, ${T}, ${V}], loss ${loss.toFixed(6)} (${device.backend}, ${ms.toFixed(0)} ms)`,
        );
    },
  );
}
