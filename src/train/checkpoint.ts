/**
 * Training checkpoints. Each is a directory `step-NNNNNNNN` under the run's checkpoint folder holding
 *   config.json + model.safetensors   the released format (checkpoint names, experts unstacked, as
 *                                     stored: src/model/load.ts opens it like any release);
 *   tokenizer.json / tiktoken.model   the run's tokenizer files, if it has any (generate finds them there);
 *   trainer_state.safetensors         optimizer moments, by parameter name;
 *   trainer_state.json                step, seed, data position, config hash, loss history.
 * The directory is written under a temporary name, every file fsynced, then renamed into place; the
 * `latest` pointer file (a temp file, fsynced, renamed) is updated last. A crash at any moment leaves
 * `latest` naming a complete checkpoint.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TensorData } from '../io/safetensors/encode.js';
import { openSafetensors, writeSafetensors } from '../io/safetensors/index.js';
import type { KimiLinearConfig } from '../model/config.js';
import { keepF32, type ModelWeights } from '../model/weights.js';
import { f32ArrayToBf16 } from '../tensor/dtype.js';
import { expertName } from './params.js';
import type { Tensor } from '../tensor/tensor.js';

export interface TrainerState {
  step: number;
  seed: number;
  /** sha256 of the run settings that must not change across a resume. */
  config_hash: string;
  /** Data position: the packed loader's state, or null when batches are a function of (seed, step). */
  data_state: unknown;
  /** Every random draw of a step is a counter-based function of (seed, step), so this is the RNG state. */
  rng: { kind: 'counter'; seed: number; step: number };
  /** Recent losses (spike detection's running median continues across a resume). */
  loss_history: number[];
  tokens_seen: number;
}

export const LATEST = 'latest';

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

async function fsyncPath(path: string): Promise<void> {
  try {
    const fh = await open(path, 'r');
    await fh.sync().finally(() => fh.close());
  } catch {}
}

async function writeFileSynced(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The model's weights under checkpoint names, routed experts unstacked. With `dtype` 'bf16' the matrices
 * are stored in bf16 as the released checkpoints are (norms, A_log, dt_bias, biases, conv weights stay
 * f32); otherwise as on the device.
 */
export async function modelTensorData(
  weights: ModelWeights,
  dtype: 'f32' | 'bf16' = 'f32',
): Promise<Map<string, TensorData>> {
  const out = new Map<string, TensorData>();
  const entry = (name: string, t: Tensor, shape: number[], data: ArrayBufferView): TensorData =>
    dtype === 'bf16' && t.dtype === 'f32' && !keepF32(name)
      ? { dtype: 'bf16', shape, data: f32ArrayToBf16(data as Float32Array) }
      : { dtype: t.dtype, shape, data };
  for (const [name, t] of weights.tensors) out.set(name, entry(name, t, [...t.shape], await t.read()));
  for (const [layer, e] of weights.experts) {
    for (const w of ['w1', 'w2', 'w3'] as const) {
      const t = e[w];
      const data = await t.read();
      const [E, r, c] = t.shape;
      for (let k = 0; k < E; k++) {
        const name = `model.layers.${layer}.block_sparse_moe.experts.${k}.${w}.weight`;
        out.set(name, entry(name, t, [r, c], data.subarray(k * r * c, (k + 1) * r * c)));
      }
    }
  }
  // Keep the released order: sorted names, as safetensors writers usually emit.
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Prefix of the f32 master weights in trainer_state.safetensors when the model file is bf16. */
export const MASTER = 'master/';

export interface SaveArgs {
  root: string;
  cfg: KimiLinearConfig;
  weights: ModelWeights;
  optimizerState: Map<string, Tensor>;
  state: TrainerState;
  /** Tokenizer files to store beside the model (name -> contents). */
  tokenizerFiles?: ReadonlyMap<string, string>;
  /** Keep this many newest checkpoints (0 = all). */
  keep?: number;
  /** Matrices of model.safetensors in bf16 (f32 masters then go to trainer_state.safetensors). */
  modelDtype?: 'f32' | 'bf16';
}

/** Write a checkpoint for state.step atomically and point `latest` at it; returns its directory. */
export async function saveCheckpoint(a: SaveArgs): Promise<string> {
  await mkdir(a.root, { recursive: true });
  const name = stepDirName(a.state.step);
  const final = join(a.root, name);
  const tmp = join(a.root, `.${name}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(tmp);
  try {
    await writeFileSynced(join(tmp, 'config.json'), `${JSON.stringify(a.cfg, null, 2)}\n`);
    await writeSafetensors(join(tmp, 'model.safetensors'), await modelTensorData(a.weights, a.modelDtype), {
      metadata: { format: 'pt' },
    });
    const opt = new Map<string, TensorData>();
    for (const [n, t] of a.optimizerState) opt.set(n, { dtype: t.dtype, shape: [...t.shape], data: await t.read() });
    // bf16 model files lose the low mantissa bits training needs: keep exact f32 masters for resume.
    if (a.modelDtype === 'bf16') {
      for (const [n, t] of a.weights.tensors)
        if (t.dtype === 'f32' && !keepF32(n))
          opt.set(`${MASTER}${n}`, { dtype: 'f32', shape: [...t.shape], data: await t.read() });
      for (const [layer, e] of a.weights.experts)
        for (const w of ['w1', 'w2', 'w3'] as const)
          opt.set(`${MASTER}${expertName(layer, w)}`, {
            dtype: 'f32',
            shape: [...e[w].shape],
            data: await e[w].read(),
          });
    }
    await writeSafetensors(join(tmp, 'trainer_state.safetensors'), opt);
    for (const [name, text] of a.tokenizerFiles ?? []) await writeFileSynced(join(tmp, name), text);
    await writeFileSynced(join(tmp, 'trainer_state.json'), `${JSON.stringify(a.state, null, 2)}\n`);
    await fsyncPath(tmp);
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    await fsyncPath(a.root);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const ptrTmp = join(a.root, `.${LATEST}.tmp-${process.pid}`);
  await writeFileSynced(ptrTmp, `${name}\n`);
  await rename(ptrTmp, join(a.root, LATEST));
  await fsyncPath(a.root);
  if (a.keep && a.keep > 0) await prune(a.root, a.keep, name);
  return final;
}

async function prune(root: string, keep: number, current: string): Promise<void> {
  const dirs = (await readdir(root)).filter((d) => /^step-\d{8}$/.test(d)).sort();
  for (const d of dirs.slice(0, Math.max(0, dirs.length - keep))) {
    if (d !== current) await rm(join(root, d), { recursive: true, force: true });
  }
}

/** The directory `latest` names, or undefined when there is no checkpoint yet. */
export async function latestCheckpoint(root: string): Promise<string | undefined> {
  let name: string;
  try {
    name = (await readFile(join(root, LATEST), 'utf8')).trim();
  } catch {
    return undefined;
  }
  if (!/^step-\d{8}$/.test(name)) throw new Error(`${join(root, LATEST)}: holds '${name}', expected step-NNNNNNNN`);
  return join(root, name);
}

export async function readTrainerState(
  dir: string,
): Promise<{ state: TrainerState; optimizer: Map<string, Float32Array> }> {
  const state = JSON.parse(await readFile(join(dir, 'trainer_state.json'), 'utf8')) as TrainerState;
  const f = await openSafetensors(join(dir, 'trainer_state.safetensors'));
  const optimizer = new Map<string, Float32Array>();
  try {
    for (const name of f.names) {
      const t = await f.readHost(name, { dtype: 'f32' });
      optimizer.set(name, t.data as Float32Array);
    }
  } finally {
    await f.close();
  }
  return { state, optimizer };
}
