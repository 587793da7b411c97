/**
 * The training loop. One step: for each micro-batch, gradients of the mean next-token loss (gradients
 * summed over micro-batches); squared gradient norms per tensor; the clip factor computed on the device;
 * the optimizer step (Muon/AdamW) with that factor; update and weight norms; A_log copied; then the one
 * readback of the step's scalar buffer. On the host: metrics line, NaN/Inf and loss-spike checks,
 * QK-clip of MLA heads whose max logit passed tau, and the MoE bias nudge from the expert counts.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { layerMap } from '../model/config.js';
import type { KimiLinearModel } from '../model/forward.js';
import type { ModelWeights } from '../model/weights.js';
import { contiguous } from '../kernels/copy/index.js';
import { crossEntropy } from '../kernels/crossEntropy/index.js';
import { add } from '../kernels/elementwise/index.js';
import { GpuContext } from '../gpu/context.js';
import { scopeAsync } from '../tensor/scope.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { type TrainerState, latestCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { BatchSource } from './data.js';
import type { GradientFn } from './gradients.js';
import { balanceBias, loadSummary } from './moeBalance.js';
import { clipFactorInto, sumsqInto } from './optim/ops.js';
import { Optimizer } from './optimizer.js';
import { type Param, paramList, tensorOf } from './params.js';
import { applyQkClip, type QkClipEvent } from './qkclip.js';
import { ScalarBuffer } from './scalars.js';
import { lrAt, type ScheduleConfig } from './schedule.js';
import type { RunConfig } from './config.js';

export class TrainingStopped extends Error {
  override name = 'TrainingStopped';
  constructor(
    message: string,
    readonly step: number,
    readonly metric: string,
    readonly lastGood: string | undefined,
  ) {
    super(message);
  }
}

export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  tokens_per_s: number;
  ms: number;
  grad_norm: number;
  clip_factor: number;
  grad_norm_layers: number[];
  grad_norm_other: number;
  update_rms_ratio: Record<string, number>;
  a_log: Record<string, number[]>;
  kda: Record<string, Record<string, number>>;
  expert_load: Record<string, { max_share: number; min_share: number; idle: number }>;
  mla_max_logit: Record<string, number[]>;
  act_rms: Record<string, number>;
  qk_clip: QkClipEvent[];
  eval_loss?: number;
}

export interface TrainerOptions {
  run: RunConfig;
  model: KimiLinearModel;
  device: Device;
  source: BatchSource;
  evalSets: Int32Array[];
  gradFn: GradientFn;
  configHash: string;
  /** Absolute paths. */
  checkpointDir: string;
  metricsPath: string;
  tokenizerFiles?: ReadonlyMap<string, string>;
  /** Resume: the state of the checkpoint the weights came from. */
  resume?: { state: TrainerState; optimizer: Map<string, Float32Array> };
  onStep?: (m: StepMetrics) => void;
  onEval?: (step: number, loss: number) => void;
  onCheckpoint?: (dir: string) => void;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

function setTensor(w: ModelWeights, name: string, t: Tensor): void {
  const m = /^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(w1|w2|w3)$/.exec(name);
  if (m) w.experts.get(Number(m[1]))![m[2] as 'w1' | 'w2' | 'w3'] = t;
  else w.tensors.set(name, t);
}

export class Trainer {
  readonly params: Param[];
  readonly optimizer: Optimizer;
  readonly schedule: ScheduleConfig;
  step = 0;
  tokensSeen = 0;
  lossHistory: number[] = [];
  private readonly biases = new Map<number, Float32Array>();

  constructor(readonly o: TrainerOptions) {
    const { run, model, device } = o;
    this.params = paramList(model.weights, { muon: run.optimizer.kind === 'muon' });
    this.optimizer = new Optimizer(
      this.params,
      { ...run.optimizer, betas: run.optimizer.betas as [number, number] },
      model.weights,
      device,
    );
    this.schedule = { ...run.schedule, lr: run.optimizer.lr, total_steps: run.steps };
    if (o.resume) {
      const s = o.resume.state;
      if (s.config_hash !== o.configHash) {
        throw new Error(
          `resume: the checkpoint was made with run settings ${s.config_hash}, this run file has ${o.configHash}; ` +
            'model, data, tokenizer, shapes, seed, steps, optimizer and schedule must not change across a resume',
        );
      }
      this.optimizer.loadState((n) => o.resume!.optimizer.get(n), device);
      this.optimizer.step = s.step;
      this.step = s.step;
      this.tokensSeen = s.tokens_seen;
      this.lossHistory = [...s.loss_history];
    }
  }

  /** Host copies of the MoE selection biases (read once; the device copy is rewritten after each nudge). */
  private async biasOf(layer: number): Promise<Float32Array> {
    let b = this.biases.get(layer);
    if (!b) {
      b = (
        await this.o.model.weights
          .get(`model.layers.${layer}.block_sparse_moe.gate.e_score_correction_bias`)
          .toFloat32()
      ).slice();
      this.biases.set(layer, b);
    }
    return b;
  }

  /**
   * Mean next-token loss over the evaluation windows. The cross-entropy runs on the device (only the
   * loss is read back, not the [B, T, V] logits); batches are weighted by their B*(T-1) positions.
   */
  async evaluate(): Promise<number> {
    let total = 0;
    let count = 0;
    const T = this.o.run.seq_len;
    const V = this.o.model.cfg.vocab_size;
    const { device } = this.o;
    for (const b of this.o.evalSets) {
      const B = b.length / T;
      const targets = new Int32Array(B * (T - 1));
      for (let r = 0; r < B; r++) targets.set(b.subarray(r * T + 1, (r + 1) * T), r * (T - 1));
      const loss = await scopeAsync(async () => {
        const { logits } = this.o.model.forward(device.fromHost(b, [B, T], 'i32'));
        const rows = contiguous(logits.narrow(1, 0, T - 1)).reshape([B * (T - 1), V]);
        const ce = crossEntropy(rows, device.fromHost(targets, [B * (T - 1)], 'i32'));
        return ((await ce.loss.read()) as Float32Array)[0];
      });
      total += loss * B * (T - 1);
      count += B * (T - 1);
    }
    return count ? total / count : Number.NaN;
  }

  async trainStep(): Promise<StepMetrics> {
    const { run, model, device } = this.o;
    const step = this.step;
    const t0 = performance.now();
    const lr = lrAt(step, this.schedule);
    const B = run.batch;
    const T = run.seq_len;
    let grads: ModelWeights | undefined;
    const losses: Tensor[] = [];
    const stats: Map<string, Tensor>[] = [];
    for (let micro = 0; micro < run.grad_accum; micro++) {
      const ids = device.fromHost(await this.o.source.next(step, micro), [B, T], 'i32');
      const r = this.o.gradFn(model, ids);
      ids.dispose();
      losses.push(r.loss);
      stats.push(r.stats);
      if (!grads) grads = r.grads;
      else {
        for (const p of this.params) {
          const acc = tensorOf(grads, p.name);
          setTensor(grads, p.name, add(acc, tensorOf(r.grads, p.name)));
          acc.dispose();
        }
        r.grads.dispose();
      }
    }
    const cfg = model.cfg;
    const aLogNames = layerMap(cfg)
      .filter((l) => l.mixer === 'kda')
      .map((l) => `model.layers.${l.index}.self_attn.A_log`);
    const statCount = stats.reduce((n, s) => n + [...s.values()].reduce((k, t) => k + t.numel, 0), 0);
    const P = this.params.length;
    const capacity = 2 + losses.length + statCount + 3 * P + aLogNames.reduce((n, a) => n + model.w(a).numel, 0);
    const sc = new ScalarBuffer(device, capacity);
    try {
      for (const [k, l] of losses.entries()) sc.copyFrom(`loss.${k}`, l);
      stats.forEach((s, k) => {
        for (const [name, t] of s) sc.copyFrom(`m${k}/${name}`, t);
      });
      const first = sc.slot('gsq', P);
      for (const [k, p] of this.params.entries()) sumsqInto(tensorOf(grads!, p.name), sc.tensor, first + k);
      const clipSlot = sc.slot('clip', 2);
      clipFactorInto(sc.tensor, first, P, clipSlot, 1 / run.grad_accum, run.optimizer.grad_clip);
      const usq = sc.slot('usq', P);
      const wsq = sc.slot('wsq', P);
      this.optimizer.apply(model.weights, grads!, lr, sc.tensor, clipSlot + 1, (_p, upd, w, k) => {
        sumsqInto(upd, sc.tensor, usq + k);
        sumsqInto(w, sc.tensor, wsq + k);
      });
      for (const a of aLogNames) sc.copyFrom(a, model.w(a));
      const host = await sc.read();
      const m = await this.finishStep(step, lr, host, t0);
      // Every step repeats the first one's buffers: keep them pooled instead of destroying what passes
      // the pool's default free cap and creating it again next step (bufferPool.ts, keepWorkingSet).
      if (device instanceof GpuContext) device.pool.keepWorkingSet();
      return m;
    } finally {
      sc.dispose();
      grads?.dispose();
      for (const l of losses) l.dispose();
      for (const s of stats) for (const t of s.values()) t.dispose();
    }
  }

  private async finishStep(step: number, lr: number, host: Map<string, number[]>, t0: number): Promise<StepMetrics> {
    const { run, model } = this.o;
    const cfg = model.cfg;
    const accum = run.grad_accum;
    let loss = 0;
    for (let k = 0; k < accum; k++) loss += host.get(`loss.${k}`)![0] / accum;
    const [gradNorm, clipFactor] = host.get('clip')!;
    const gsq = host.get('gsq')!;
    const usq = host.get('usq')!;
    const wsq = host.get('wsq')!;
    const L = cfg.num_hidden_layers;
    const layerSq = new Array<number>(L).fill(0);
    let otherSq = 0;
    const groupU: Record<string, number> = { muon: 0, adamw: 0 };
    const groupW: Record<string, number> = { muon: 0, adamw: 0 };
    let firstBad: Param | undefined;
    this.params.forEach((p, k) => {
      if (!Number.isFinite(gsq[k]) && !firstBad) firstBad = p;
      if (p.layer >= 0) layerSq[p.layer] += gsq[k];
      else otherSq += gsq[k];
      groupU[p.group] += usq[k];
      groupW[p.group] += wsq[k];
    });
    // Norms of the averaged gradient (grads are summed over micro-batches).
    const g = (s: number) => Math.sqrt(s) / accum;
    const stat = (name: string, combine: 'mean' | 'sum' | 'max'): number[] | undefined => {
      const parts: number[][] = [];
      for (let k = 0; k < accum; k++) {
        const v = host.get(`m${k}/${name}`);
        if (v) parts.push(v);
      }
      if (!parts.length) return undefined;
      return parts[0].map((_, i) => {
        const xs = parts.map((p) => p[i]);
        if (combine === 'max') return Math.max(...xs);
        const s = xs.reduce((a, b) => a + b, 0);
        return combine === 'sum' ? s : s / xs.length;
      });
    };
    const m: StepMetrics = {
      step: step + 1,
      loss,
      lr,
      tokens_per_s: 0,
      ms: 0,
      grad_norm: gradNorm,
      clip_factor: clipFactor * accum,
      grad_norm_layers: layerSq.map(g),
      grad_norm_other: g(otherSq),
      update_rms_ratio: Object.fromEntries(
        Object.keys(groupU)
          .filter((k) => groupW[k] > 0)
          .map((k) => [k, Math.sqrt(groupU[k] / groupW[k])]),
      ),
      a_log: {},
      kda: {},
      expert_load: {},
      mla_max_logit: {},
      act_rms: {},
      qk_clip: [],
    };
    for (const l of layerMap(cfg)) {
      const i = l.index;
      const rms = stat(`layers.${i}.act_rms`, 'mean');
      if (rms) m.act_rms[i] = rms[0];
      if (l.mixer === 'kda') {
        m.a_log[i] = host.get(`model.layers.${i}.self_attn.A_log`) ?? [];
        const kda: Record<string, number> = {};
        for (const s of ['decay_mean', 'decay_min', 'beta_mean', 'beta_min', 'beta_max'] as const) {
          const xs = this.allMicro(host, `layers.${i}.kda.${s}`);
          if (!xs.length) continue;
          kda[s] = s.endsWith('_min')
            ? Math.min(...xs)
            : s.endsWith('_max')
              ? Math.max(...xs)
              : xs.reduce((a, b) => a + b, 0) / xs.length;
        }
        m.kda[i] = kda;
      } else {
        const ml = stat(`layers.${i}.mla.max_logit`, 'max');
        if (ml) m.mla_max_logit[i] = ml;
      }
      if (l.ffn === 'moe') {
        const counts = stat(`layers.${i}.moe.expert_counts`, 'sum');
        if (counts) {
          m.expert_load[i] = loadSummary(counts);
          if (run.optimizer.moe_bias_rate > 0 && Number.isFinite(loss)) {
            const bias = await this.biasOf(i);
            balanceBias(bias, counts, run.optimizer.moe_bias_rate);
            this.o.device.write(model.w(`model.layers.${i}.block_sparse_moe.gate.e_score_correction_bias`), bias);
          }
        }
      }
    }
    m.ms = performance.now() - t0;
    const tokens = run.batch * run.seq_len * accum;
    m.tokens_per_s = tokens / (m.ms / 1000);
    this.tokensSeen += tokens;
    // Divergence checks before anything is kept (no checkpoint is written after a bad step).
    let why: string | undefined;
    let metric = '';
    if (!Number.isFinite(loss)) {
      metric = 'loss';
      why = `loss is ${loss}`;
    } else if (!Number.isFinite(gradNorm) || firstBad) {
      metric = 'grad_norm';
      why = `gradient norm is ${gradNorm}`;
    } else if (
      this.lossHistory.length >= run.spike.min_steps &&
      loss > run.spike.factor * median(this.lossHistory.slice(-run.spike.window))
    ) {
      metric = 'loss_spike';
      why = `loss ${loss.toFixed(4)} is over ${run.spike.factor} x the median ${median(this.lossHistory.slice(-run.spike.window)).toFixed(4)} of the last ${Math.min(run.spike.window, this.lossHistory.length)} steps`;
    }
    if (why) {
      if (firstBad) {
        const where = firstBad.layer >= 0 ? `layer ${firstBad.layer}` : 'outside the decoder layers';
        why += `; first non-finite gradient: ${firstBad.name} (${where})`;
      } else {
        // No non-finite tensor to name: point at the layer whose gradient is largest.
        const top = m.grad_norm_layers.reduce((b, v, i) => (v > m.grad_norm_layers[b] ? i : b), 0);
        why += `; largest layer gradient norm: layer ${top} (${m.grad_norm_layers[top]?.toPrecision(4)})`;
      }
      const lastGood = await latestCheckpoint(this.o.checkpointDir);
      throw new TrainingStopped(
        `training stopped at step ${step + 1}: ${why} (metric '${metric}'). This step's update is not saved; ` +
          (lastGood
            ? `the last good checkpoint is ${lastGood} (resume from it with --resume)`
            : 'no checkpoint was written yet'),
        step + 1,
        metric,
        lastGood,
      );
    }
    m.qk_clip = applyQkClip(cfg, model.weights, (i) => m.mla_max_logit[i], run.optimizer.qk_clip_tau);
    this.lossHistory.push(loss);
    if (this.lossHistory.length > 256) this.lossHistory.splice(0, this.lossHistory.length - 256);
    this.step = step + 1;
    return m;
  }

  private allMicro(host: Map<string, number[]>, name: string): number[] {
    const out: number[] = [];
    for (let k = 0; k < this.o.run.grad_accum; k++) out.push(...(host.get(`m${k}/${name}`) ?? []));
    return out;
  }

  async checkpoint(): Promise<string> {
    const state: TrainerState = {
      step: this.step,
      seed: this.o.run.seed,
      config_hash: this.o.configHash,
      data_state: this.o.source.state(),
      rng: { kind: 'counter', seed: this.o.run.seed, step: this.step },
      loss_history: this.lossHistory.slice(-Math.max(this.o.run.spike.window, 1)),
      tokens_seen: this.tokensSeen,
    };
    const dir = await saveCheckpoint({
      root: this.o.checkpointDir,
      cfg: this.o.model.cfg,
      weights: this.o.model.weights,
      optimizerState: this.optimizer.stateTensors(),
      state,
      tokenizerFiles: this.o.tokenizerFiles,
      keep: this.o.run.checkpoint.keep,
      modelDtype: this.o.run.checkpoint.model_dtype,
    });
    this.o.onCheckpoint?.(dir);
    return dir;
  }

  /** Run from the current step to run.steps: metrics lines, evals, checkpoints. */
  async run(): Promise<StepMetrics[]> {
    const { run, metricsPath } = this.o;
    await this.trimMetrics();
    const out: StepMetrics[] = [];
    // Read the MoE biases once up front, so every step keeps to its one readback.
    for (const l of layerMap(this.o.model.cfg)) if (l.ffn === 'moe') await this.biasOf(l.index);
    while (this.step < run.steps) {
      const m = await this.trainStep();
      const s = m.step;
      if (run.eval.interval > 0 && this.o.evalSets.length && (s % run.eval.interval === 0 || s === run.steps)) {
        m.eval_loss = await this.evaluate();
        this.o.onEval?.(s, m.eval_loss);
      }
      await appendFile(metricsPath, `${JSON.stringify(m)}\n`);
      out.push(m);
      this.o.onStep?.(m);
      if ((run.checkpoint.interval > 0 && s % run.checkpoint.interval === 0) || s === run.steps)
        await this.checkpoint();
    }
    return out;
  }

  /** On resume, drop metric lines past the resumed step (they belong to the run that was cut off). */
  private async trimMetrics(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.o.metricsPath, 'utf8');
    } catch {
      await writeFile(this.o.metricsPath, '');
      return;
    }
    const keep = text
      .split('\n')
      .filter((l) => l.trim())
      .filter((l) => {
        try {
          return (JSON.parse(l) as { step: number }).step <= this.step;
        } catch {
          return false;
        }
      });
    await writeFile(this.o.metricsPath, keep.map((l) => `${l}\n`).join(''));
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
