/**
 * A training run from a run file: device, tokenizer, data, model (fresh seeded random weights, a config,
 * an `init_from` checkpoint, or the run's own latest checkpoint on --resume), then the Trainer. Also
 * computes the unigram baseline on the held-out text, so the learned model can be compared with it.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ByteTokenizer } from '../io/tokenizer/bytes.js';
import { ByteLevelBpe, loadTokenizer, trainBpe } from '../io/tokenizer/index.js';
import type { Tokenizer } from '../io/tokenizer/types.js';
import { type KimiLinearConfig, parseKimiConfig } from '../model/config.js';
import { KimiLinearModel } from '../model/forward.js';
import { loadModel } from '../model/load.js';
import { loadKimiConfig } from '../model/loadConfig.js';
import { randomModelWeights } from '../model/randomWeights.js';
import { type BackendChoice, openDevice } from '../runtime/backend.js';
import type { Device } from '../tensor/tensor.js';
import { latestCheckpoint, MASTER, readTrainerState } from './checkpoint.js';
import { configHash, loadRunConfig, type RunConfig, resolvePath } from './config.js';
import {
  type BatchSource,
  DatasetSource,
  evalBatches,
  readDocuments,
  tokenizeDocuments,
  unigramNats,
  WindowSource,
} from './data.js';
import { defaultGradientFn, type GradientFn } from './gradients.js';
import { tensorOf } from './params.js';
import { type StepMetrics, Trainer } from './trainer.js';

export interface RunOptions {
  resume?: boolean;
  /** Overrides the run file's run_dir. */
  runDir?: string;
  backend?: BackendChoice;
  device?: Device;
  gradFn?: GradientFn;
  onStep?: (m: StepMetrics, trainer: Trainer) => void;
  onEval?: (step: number, loss: number) => void;
  log?: (line: string) => void;
}

export interface RunSummary {
  runDir: string;
  checkpoint: string | undefined;
  startStep: number;
  steps: number;
  firstLoss: number | undefined;
  lastLoss: number | undefined;
  evalLoss: number | undefined;
  unigramEvalNats: number | undefined;
  metrics: StepMetrics[];
}

/** Files a tokenizer may live in, copied into every checkpoint so `generate` finds them. */
const TOKENIZER_FILE_NAMES = ['tokenizer.json', 'tiktoken.model', 'tokenizer_config.json'];

async function makeTokenizer(
  run: RunConfig,
  docs: string[] | undefined,
  resumeDir: string | undefined,
): Promise<{ tok: Tokenizer; files: Map<string, string> }> {
  const t = run.tokenizer;
  const files = new Map<string, string>();
  if (t === 'bytes') return { tok: new ByteTokenizer(), files };
  if ('path' in t) {
    const path = resolvePath(run.base, t.path);
    const tok = await loadTokenizer(path).catch((e: Error) => {
      throw new Error(`tokenizer.path: ${e.message}`);
    });
    if (existsSync(path) && statSync(path).isDirectory()) {
      for (const f of TOKENIZER_FILE_NAMES)
        if (existsSync(join(path, f))) files.set(f, await readFile(join(path, f), 'utf8'));
    } else {
      files.set(path.endsWith('.json') ? 'tokenizer.json' : 'tiktoken.model', await readFile(path, 'utf8'));
    }
    return { tok, files };
  }
  // A trained BPE is part of the run: on resume, reuse the checkpoint's copy rather than retraining.
  if (resumeDir && existsSync(join(resumeDir, 'tokenizer.json'))) {
    const text = await readFile(join(resumeDir, 'tokenizer.json'), 'utf8');
    const tok = ByteLevelBpe.fromHuggingFace(JSON.parse(text));
    if (tok) return { tok, files: files.set('tokenizer.json', text) };
  }
  if (!docs) throw new Error('tokenizer.train_bpe needs text data (data.files), not a token dataset');
  let budget = t.train_bpe.sample_chars;
  const sample: string[] = [];
  for (const d of docs) {
    if (budget <= 0) break;
    sample.push(d.slice(0, budget));
    budget -= d.length;
  }
  const tok = trainBpe(sample, { vocabSize: t.train_bpe.vocab_size, specialTokens: ['<|endoftext|>'] });
  return { tok, files: files.set('tokenizer.json', JSON.stringify(tok.toHuggingFace())) };
}

async function modelConfig(run: RunConfig): Promise<KimiLinearConfig | undefined> {
  const m = run.model;
  if (!('config' in m)) return undefined;
  try {
    if (typeof m.config === 'string') return await loadKimiConfig(resolvePath(run.base, m.config));
    return parseKimiConfig(m.config, 'inline config');
  } catch (e) {
    throw new Error(`model.config: ${(e as Error).message}`);
  }
}

export async function runTraining(configPath: string, opts: RunOptions = {}): Promise<RunSummary> {
  const log = opts.log ?? (() => {});
  const run = await loadRunConfig(configPath);
  if (opts.runDir) run.runDir = resolvePath(process.cwd(), opts.runDir);
  const hash = configHash(run);
  const ckptDir = resolvePath(run.runDir, run.checkpoint.dir);
  const metricsPath = resolvePath(run.runDir, run.metrics);
  await mkdir(run.runDir, { recursive: true });
  const latest = await latestCheckpoint(ckptDir);
  if (latest && !opts.resume) {
    throw new Error(
      `${ckptDir} already holds checkpoints (latest ${latest}): pass --resume to continue, or choose another run_dir/checkpoint.dir`,
    );
  }
  const resumeDir = opts.resume ? latest : undefined;
  if (opts.resume && !latest) log(`--resume: no checkpoint in ${ckptDir} yet, starting from step 0`);
  const device = opts.device ?? (await openDevice({ backend: opts.backend ?? run.backend }));

  const data = run.data;
  const files = 'files' in data ? data.files.map((f) => resolvePath(run.base, f)) : undefined;
  const docs = files ? await readDocuments(files, data.text_field) : undefined;
  const { tok, files: tokenizerFiles } = await makeTokenizer(run, docs, resumeDir);

  let trainTokens: Int32Array | undefined;
  let evalTokens: Int32Array | undefined;
  if (docs && 'files' in data) {
    const all = tokenizeDocuments(docs, tok);
    const split = Math.floor(all.length * (1 - data.held_out));
    trainTokens = all.subarray(0, split);
    evalTokens = data.eval_files ? undefined : all.subarray(split);
  }
  if (data.eval_files) {
    evalTokens = tokenizeDocuments(
      await readDocuments(
        data.eval_files.map((f) => resolvePath(run.base, f)),
        data.text_field,
      ),
      tok,
    );
  }

  let model: KimiLinearModel;
  let resume: Awaited<ReturnType<typeof readTrainerState>> | undefined;
  if (resumeDir) {
    model = await loadModel(resumeDir, device, { dtype: 'f32' });
    resume = await readTrainerState(resumeDir);
    // A bf16 model file comes with exact f32 master weights in the trainer state.
    for (const [name, data] of resume.optimizer) {
      if (name.startsWith(MASTER)) device.write(tensorOf(model.weights, name.slice(MASTER.length)), data);
    }
    log(`resuming from ${resumeDir} (step ${resume.state.step})`);
  } else if ('init_from' in run.model) {
    const dir = resolvePath(run.base, run.model.init_from);
    model = await loadModel(dir, device, { dtype: 'f32' }).catch((e: Error) => {
      throw new Error(`model.init_from: cannot load the checkpoint '${dir}' (${e.message})`);
    });
  } else {
    const cfg = (await modelConfig(run))!;
    model = new KimiLinearModel(cfg, randomModelWeights(cfg, device, 'f32', run.seed));
  }
  if (model.cfg.vocab_size < tok.vocabSize) {
    throw new Error(
      `model vocab_size ${model.cfg.vocab_size} is smaller than the tokenizer's ${tok.vocabSize} tokens; raise vocab_size in the model config`,
    );
  }

  let source: BatchSource;
  if ('dataset' in data) {
    source = await DatasetSource.open(
      resolvePath(run.base, data.dataset),
      data.stage,
      run.batch,
      run.seq_len,
      run.seed,
      resume?.state.data_state,
    );
  } else source = new WindowSource(trainTokens!, run.batch, run.seq_len, run.seed);
  const evalSets = evalTokens ? evalBatches(evalTokens, run.batch, run.seq_len, run.eval.batches) : [];
  const unigram =
    trainTokens && evalSets.length
      ? unigramNats(
          trainTokens,
          Int32Array.from(evalSets.flatMap((b) => Array.from(b).filter((_, i) => i % run.seq_len !== 0))),
          model.cfg.vocab_size,
        )
      : undefined;

  const trainer = new Trainer({
    run,
    model,
    device,
    source,
    evalSets,
    gradFn: opts.gradFn ?? defaultGradientFn,
    configHash: hash,
    checkpointDir: ckptDir,
    metricsPath,
    tokenizerFiles,
    resume,
    onStep: (m) => opts.onStep?.(m, trainer),
    onEval: opts.onEval,
  });
  const startStep = trainer.step;
  try {
    const metrics = await trainer.run();
    const evals = metrics.filter((m) => m.eval_loss !== undefined);
    return {
      runDir: run.runDir,
      checkpoint: await latestCheckpoint(ckptDir),
      startStep,
      steps: run.steps,
      firstLoss: metrics[0]?.loss,
      lastLoss: metrics[metrics.length - 1]?.loss,
      evalLoss: evals[evals.length - 1]?.eval_loss,
      unigramEvalNats: unigram,
      metrics,
    };
  } finally {
    trainer.dispose();
    await source.close();
    model.weights.dispose();
  }
}
