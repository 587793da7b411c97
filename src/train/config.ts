/**
 * The run file of `kimi-linear train --config RUN.yaml`, validated with zod. Errors name the YAML
 * field, the value found and what was expected. Relative paths are relative to the YAML file.
 *
 *   model:      {config: config.json path or an inline config object} or {init_from: checkpoint dir}
 *   tokenizer:  bytes | {path: tokenizer.json} | {train_bpe: {vocab_size, sample_chars}}
 *   data:       {files: [*.txt | *.jsonl], text_field, held_out} or {dataset: DIR, stage} (token shards)
 *               eval_files: optional held-out files (else the last `held_out` fraction of the text)
 *   seq_len, batch, grad_accum, steps, seed
 *   optimizer:  {kind: muon|adamw, lr, betas, eps, weight_decay, momentum, adamw_lr_scale, grad_clip,
 *                qk_clip_tau, moe_bias_rate}
 *   schedule:   {kind: constant|cosine|wsd, warmup_steps, decay_steps, decay_shape, min_lr}
 *   eval:       {interval, batches}
 *   checkpoint: {dir, interval, keep, model_dtype: f32|bf16 (bf16: released dtypes, f32 masters in trainer state)}
 *   metrics:    metrics.jsonl path;  run_dir: where checkpoints/metrics go (default: next to the YAML)
 *   spike:      {factor, window}: stop when loss > factor x the median of the last `window` losses
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type core, z } from 'zod';
import { show } from '../model/config.js';

const pos = () => z.number().int().positive();

const RunSchema = z.strictObject({
  run_dir: z.string().optional(),
  model: z.union([
    z.strictObject({ config: z.union([z.string(), z.record(z.string(), z.unknown())]) }),
    z.strictObject({ init_from: z.string() }),
  ]),
  tokenizer: z
    .union([
      z.literal('bytes'),
      z.strictObject({ path: z.string() }),
      z.strictObject({
        train_bpe: z.strictObject({ vocab_size: z.number().int().min(257), sample_chars: pos().default(4_000_000) }),
      }),
    ])
    .default('bytes'),
  data: z.union([
    z.strictObject({
      files: z.array(z.string()).min(1),
      text_field: z.string().default('text'),
      held_out: z.number().min(0).max(0.5).default(0.05),
      eval_files: z.array(z.string()).optional(),
    }),
    z.strictObject({
      dataset: z.string(),
      stage: z.string().default('pretrain'),
      eval_files: z.array(z.string()).optional(),
      text_field: z.string().default('text'),
    }),
  ]),
  seq_len: pos(),
  batch: pos(),
  grad_accum: pos().default(1),
  steps: pos(),
  seed: z.number().int().nonnegative().default(1),
  backend: z.enum(['auto', 'webgpu', 'cpu']).default('auto'),
  optimizer: z
    .strictObject({
      kind: z.enum(['muon', 'adamw']).default('muon'),
      lr: z.number().positive().default(0.02),
      betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.95]),
      eps: z.number().positive().default(1e-8),
      weight_decay: z.number().min(0).default(0.1),
      momentum: z.number().min(0).max(1).default(0.95),
      adamw_lr_scale: z.number().positive().default(1),
      grad_clip: z.number().min(0).default(1),
      qk_clip_tau: z.number().positive().default(100),
      moe_bias_rate: z.number().min(0).default(0.001),
    })
    .prefault({}),
  schedule: z
    .strictObject({
      kind: z.enum(['constant', 'cosine', 'wsd']).default('wsd'),
      warmup_steps: z.number().int().nonnegative().default(0),
      decay_steps: z.number().int().nonnegative().optional(),
      decay_shape: z.enum(['linear', 'cosine']).default('linear'),
      min_lr: z.number().min(0).default(0),
    })
    .prefault({}),
  eval: z.strictObject({ interval: z.number().int().nonnegative().default(0), batches: pos().default(4) }).prefault({}),
  checkpoint: z
    .strictObject({
      dir: z.string().default('checkpoints'),
      interval: z.number().int().nonnegative().default(0),
      keep: z.number().int().nonnegative().default(3),
      model_dtype: z.enum(['f32', 'bf16']).default('f32'),
    })
    .prefault({}),
  metrics: z.string().default('metrics.jsonl'),
  spike: z
    .strictObject({ factor: z.number().positive().default(4), window: pos().default(20), min_steps: pos().default(20) })
    .prefault({}),
});

export type RunConfig = z.output<typeof RunSchema> & {
  /** The YAML file's directory: relative paths resolve against it. */
  base: string;
  /** Absolute run directory. */
  runDir: string;
};

export class RunConfigError extends Error {
  override name = 'RunConfigError';
}

function issueText(i: core.$ZodIssue): string {
  const path = i.path.length ? i.path.map(String).join('.') : '(top level)';
  const input = 'input' in i ? i.input : undefined;
  switch (i.code) {
    case 'invalid_type':
      return input === undefined
        ? `missing field '${path}' (expected ${i.expected})`
        : `field '${path}' is ${show(input)}, expected ${i.expected}`;
    case 'too_small':
      return `field '${path}' is ${show(input)}, expected ${i.inclusive ? '>=' : '>'} ${String(i.minimum)}`;
    case 'too_big':
      return `field '${path}' is ${show(input)}, expected ${i.inclusive ? '<=' : '<'} ${String(i.maximum)}`;
    case 'invalid_value':
      return `field '${path}' is ${show(input)}, expected ${i.values.map((v) => show(v)).join(' or ')}`;
    case 'unrecognized_keys':
      return `${path === '(top level)' ? 'the run file' : `field '${path}'`} has unknown key(s) ${i.keys.join(', ')}`;
    case 'invalid_union':
      return `field '${path}' is ${show(input)}, which matches none of its allowed forms (see docs/TRAINING.md)`;
    default:
      return `field '${path}' is ${show(input)}: ${i.message}`;
  }
}

export function parseRunConfig(obj: unknown, file: string): RunConfig {
  const r = RunSchema.safeParse(obj, { reportInput: true });
  if (!r.success) {
    const lines = r.error.issues.slice(0, 8).map(issueText);
    throw new RunConfigError(`${file}: ${lines.length === 1 ? lines[0] : `\n  ${lines.join('\n  ')}`}`);
  }
  const base = dirname(resolve(file));
  const runDir = r.data.run_dir ? resolvePath(base, r.data.run_dir) : base;
  const cfg = { ...r.data, base, runDir };
  if (cfg.schedule.warmup_steps > cfg.steps) {
    throw new RunConfigError(
      `${file}: field 'schedule.warmup_steps' is ${cfg.schedule.warmup_steps}, expected <= steps (${cfg.steps})`,
    );
  }
  if (cfg.seq_len < 2)
    throw new RunConfigError(`${file}: field 'seq_len' is ${cfg.seq_len}, expected >= 2 (next-token loss)`);
  return cfg;
}

export async function loadRunConfig(file: string): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new RunConfigError(`${file}: cannot read (${(e as Error).message})`);
  }
  let obj: unknown;
  try {
    obj = parseYaml(text);
  } catch (e) {
    throw new RunConfigError(`${file}: not valid YAML (${(e as Error).message})`);
  }
  return parseRunConfig(obj, file);
}

export function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : join(base, p);
}

/**
 * Hash of everything a resume must not change: the model, data, tokenizer, shapes, seed, optimizer and
 * schedule. Output settings (checkpoint/eval intervals, metrics path, spike rule, backend) may change.
 */
export function configHash(cfg: RunConfig): string {
  const { model, tokenizer, data, seq_len, batch, grad_accum, steps, seed, optimizer, schedule } = cfg;
  const canon = JSON.stringify({
    model,
    tokenizer,
    data,
    seq_len,
    batch,
    grad_accum,
    steps,
    seed,
    optimizer,
    schedule,
  });
  return createHash('sha256').update(canon).digest('hex').slice(0, 16);
}
