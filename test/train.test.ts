/**
 * Trainer pieces: checkpoint save + reload gives identical logits (cpu and WebGPU), NaN and loss-spike
 * detection stop the run with step, metric, layer and the last good checkpoint, run-file validation
 * messages, schedules, QK-clip (each clipped head's logits scale by exactly gamma, the others and the
 * shared rope key untouched), and the MoE bias rule.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKimiConfigText } from '../src/model/config.js';
import { KimiLinearModel } from '../src/model/forward.js';
import { modelGradients } from '../src/model/gradients.js';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { loadTokenizer } from '../src/io/tokenizer/index.js';
import { loadModel } from '../src/model/load.js';
import { randomModelWeights } from '../src/model/randomWeights.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { readTrainerState, saveCheckpoint } from '../src/train/checkpoint.js';
import { parseRunConfig } from '../src/train/config.js';
import type { GradientFn } from '../src/train/gradients.js';
import { balanceBias } from '../src/train/moeBalance.js';
import { Optimizer } from '../src/train/optimizer.js';
import { paramList, tensorOf } from '../src/train/params.js';
import { applyQkClip, qkClipFactors } from '../src/train/qkclip.js';
import { runTraining } from '../src/train/run.js';
import { lrAt } from '../src/train/schedule.js';
import { Trainer, TrainingStopped } from '../src/train/trainer.js';
import { FIXTURES, gpuContext, hasGpu } from './helpers.js';

const gpu = await gpuContext();
const devices: [string, () => Device][] = [['cpu', () => cpu]];
if (hasGpu) devices.push(['webgpu', () => gpu!]);
const micro = parseKimiConfigText(readFileSync(join(FIXTURES, 'train/micro-model.json'), 'utf8'));

function runFile(extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'kimi-train-t-'));
  let text = readFileSync(join(FIXTURES, 'train/resume.yaml'), 'utf8')
    .replace(
      'model: {config: micro-model.json}',
      `run_dir: ${dir}\nmodel: {config: ${join(FIXTURES, 'train/micro-model.json')}}`,
    )
    .replace('../corpus/', `${join(FIXTURES, 'corpus')}/`);
  for (const [a, b] of Object.entries(extra)) text = text.replace(a, b);
  const file = join(dir, 'run.yaml');
  writeFileSync(file, text);
  return file;
}

describe.each(devices)('checkpoint round trip on %s', (_n, dev) => {
  it('save (experts unstacked, released names) + loadModel gives identical logits and optimizer state', async () => {
    const d = dev();
    const model = new KimiLinearModel(micro, randomModelWeights(micro, d, 'f32', 5));
    const opt = new Optimizer(
      paramList(model.weights),
      { kind: 'muon', betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1, momentum: 0.95, adamw_lr_scale: 1 },
      model.weights,
      d,
    );
    // Non-zero moments, so the state check means something.
    for (const t of opt.stateTensors().values())
      d.write(
        t,
        new Float32Array(t.numel).map((_, i) => Math.sin(i)),
      );
    const root = mkdtempSync(join(tmpdir(), 'kimi-ckpt-'));
    const state = {
      step: 3,
      seed: 1,
      config_hash: 'x',
      data_state: null,
      rng: { kind: 'counter' as const, seed: 1, step: 3 },
      loss_history: [1, 2],
      tokens_seen: 9,
    };
    const dir = await saveCheckpoint({
      root,
      cfg: micro,
      weights: model.weights,
      optimizerState: opt.stateTensors(),
      state,
    });
    expect(readFileSync(join(root, 'latest'), 'utf8').trim()).toBe('step-00000003');
    const back = await loadModel(dir, d);
    const ids = d.fromHost(
      Int32Array.from({ length: 2 * 9 }, (_, i) => (i * 37) % 256),
      [2, 9],
      'i32',
    );
    const a = (await model.forward(ids).logits.read()) as Float32Array;
    const b = (await back.forward(ids).logits.read()) as Float32Array;
    expect(b.length).toBe(a.length);
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    const rs = await readTrainerState(dir);
    expect(rs.state).toEqual(state);
    for (const [name, t] of opt.stateTensors()) {
      expect(Array.from(rs.optimizer.get(name)!), name).toEqual(Array.from((await t.read()) as Float32Array));
    }
  });
});

describe.skipIf(!hasGpu)('the trainer on WebGPU', () => {
  // Compiles every training kernel of the model on first use: minutes on lavapipe with an empty shader cache.
  it('follows the cpu trainer for 3 steps (Muon + AdamW kernels, on-device clip, grad accumulation)', {
    timeout: 480_000,
  }, async () => {
    const losses = async (device: Device) => {
      const file = runFile({
        'steps: 20': 'steps: 3',
        'interval: 10}': 'interval: 0}',
        'eval: {interval: 10': 'eval: {interval: 3',
      });
      const r = await runTraining(file, { device });
      return { loss: r.metrics.map((m) => m.loss), gnorm: r.metrics.map((m) => m.grad_norm), eval: r.evalLoss! };
    };
    const c = await losses(cpu);
    const g = await losses(gpu!);
    expect(c.loss[2]).toBeLessThan(c.loss[0]);
    // f32 kernels summing in another order: the runs drift by ~1e-6 over three steps.
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(g.loss[i] - c.loss[i]), `loss ${i + 1}`).toBeLessThan(1e-4);
      expect(Math.abs(g.gnorm[i] - c.gnorm[i]) / c.gnorm[i], `grad norm ${i + 1}`).toBeLessThan(1e-4);
    }
    expect(Math.abs(g.eval - c.eval)).toBeLessThan(1e-4);
  });
});

describe('divergence stops the run', () => {
  it('a NaN gradient at step 3 stops with the step, metric, tensor, layer and the last good checkpoint', async () => {
    let calls = 0;
    const poisoned: GradientFn = (model, ids, o) => {
      const r = modelGradients(model, ids, o);
      if (++calls === 5) {
        // step 3, micro-batch 1 (grad_accum 2): one NaN in layer 1's q_proj gradient.
        const g = tensorOf(r.grads, 'model.layers.1.self_attn.q_proj.weight');
        const v = new Float32Array(g.numel);
        v[7] = Number.NaN;
        g.device.write(g, v);
      }
      return r;
    };
    const file = runFile({ 'interval: 10}': 'interval: 2}' });
    const err = await runTraining(file, { backend: 'cpu', gradFn: poisoned }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingStopped);
    const e = err as TrainingStopped;
    expect(e.step).toBe(3);
    expect(e.metric).toBe('grad_norm');
    expect(e.message).toContain('training stopped at step 3: gradient norm is NaN');
    expect(e.message).toContain('model.layers.1.self_attn.q_proj.weight (layer 1)');
    expect(e.message).toMatch(/last good checkpoint is .*step-00000002/);
    expect(e.lastGood).toMatch(/step-00000002$/);
  });

  it('a loss spike (80 nats against a median near 5) stops the run naming the metric', async () => {
    let calls = 0;
    const spiky: GradientFn = (model, ids, o) => {
      const r = modelGradients(model, ids, o);
      if (++calls === 9) r.loss.device.write(r.loss, Float32Array.of(80));
      return r;
    };
    const file = runFile({
      'grad_accum: 2': 'grad_accum: 1',
      'eval: {interval: 10': 'spike: {factor: 3, window: 5, min_steps: 5}\neval: {interval: 10',
    });
    const err = (await runTraining(file, { backend: 'cpu', gradFn: spiky }).catch(
      (e: unknown) => e,
    )) as TrainingStopped;
    expect(err).toBeInstanceOf(TrainingStopped);
    expect(err.step).toBe(9);
    expect(err.metric).toBe('loss_spike');
    expect(err.message).toMatch(
      /loss 80\.0000 is over 3 x the median \d\.\d+ of the last 5 steps; largest layer gradient norm: layer [01] \(\d/,
    );
    expect(err.message).toContain('no checkpoint was written yet');
  });
});

describe('gradient accumulation', () => {
  it('2 micro-batches of 2 rows step exactly like one batch of the same 4 rows', async () => {
    const T = 12;
    const rows = Array.from({ length: 4 * 3 }, (_, r) =>
      Int32Array.from({ length: T }, (_, t) => (r * 31 + t * 7) % 256),
    );
    const run = (batch: number, accum: number) => {
      const cfg = parseRunConfig(
        {
          model: { config: 'unused.json' },
          data: { files: ['unused.txt'] },
          seq_len: T,
          batch,
          grad_accum: accum,
          steps: 3,
          optimizer: { kind: 'muon', lr: 0.02, grad_clip: 0.5 },
        },
        '/nonexistent/run.yaml',
      );
      const model = new KimiLinearModel(micro, randomModelWeights(micro, cpu, 'f32', 4));
      return new Trainer({
        run: cfg,
        model,
        device: cpu,
        // Step s uses rows 4s..4s+3 either as one batch or as two micro-batches of two.
        source: {
          next: async (step, m) => {
            const out = new Int32Array(batch * T);
            for (let r = 0; r < batch; r++) out.set(rows[4 * step + m * batch + r], r * T);
            return out;
          },
          state: () => null,
          close: async () => {},
        },
        evalSets: [],
        gradFn: modelGradients,
        configHash: 'x',
        checkpointDir: '/nonexistent',
        metricsPath: '/nonexistent',
      });
    };
    const one = run(4, 1);
    const two = run(2, 2);
    for (let s = 0; s < 3; s++) {
      const a = await one.trainStep();
      const b = await two.trainStep();
      expect(Math.abs(a.loss - b.loss), `loss ${s + 1}`).toBeLessThan(1e-5);
      expect(Math.abs(a.grad_norm - b.grad_norm) / a.grad_norm, `grad norm ${s + 1}`).toBeLessThan(1e-5);
      // The clip (0.5) is active, so the factor path is exercised too.
      expect(a.clip_factor).toBeLessThan(1);
      expect(Math.abs(a.clip_factor - b.clip_factor)).toBeLessThan(1e-5);
    }
  });
});

describe('bf16 checkpoints', () => {
  it('store matrices in bf16 (norms, A_log f32) and still resume exactly from the f32 masters', async () => {
    const patch = {
      'steps: 20': 'steps: 4',
      'interval: 10}': 'interval: 2, model_dtype: bf16}',
      'eval: {interval: 10': 'eval: {interval: 0',
    };
    const a = await runTraining(runFile(patch), { backend: 'cpu' });
    const bFile = runFile(patch);
    const cut = await runTraining(bFile, {
      backend: 'cpu',
      onStep: (m) => {
        if (m.step === 3) throw new Error('died in step 3');
      },
    }).catch((e: Error) => e.message);
    expect(cut).toBe('died in step 3');
    const b = await runTraining(bFile, { backend: 'cpu', resume: true });
    expect(b.metrics.map((m) => m.step)).toEqual([3, 4]);
    for (const m of b.metrics)
      expect(Math.abs(m.loss - a.metrics[m.step - 1].loss), `step ${m.step}`).toBeLessThanOrEqual(1e-6);
    const f = await openSafetensors(join(a.checkpoint!, 'model.safetensors'));
    expect(f.info('model.layers.0.self_attn.q_proj.weight').dtype).toBe('BF16');
    expect(f.info('model.layers.1.block_sparse_moe.experts.3.w2.weight').dtype).toBe('BF16');
    expect(f.info('model.layers.0.self_attn.A_log').dtype).toBe('F32');
    expect(f.info('model.layers.0.input_layernorm.weight').dtype).toBe('F32');
    await f.close();
    // The bf16 release-format directory loads as any checkpoint does.
    const m = await loadModel(a.checkpoint!, cpu);
    expect(m.w('model.layers.0.self_attn.q_proj.weight').dtype).toBe('bf16');
    m.weights.dispose();
  });
});

describe('tokenizers and init_from', () => {
  it('a BPE trained by the run is saved with each checkpoint; a second run starts from that directory', async () => {
    const model = JSON.parse(readFileSync(join(FIXTURES, 'train/micro-model.json'), 'utf8'));
    model.vocab_size = 320;
    const first = runFile({
      'model: {config: ': `model: {config: ${JSON.stringify(model)}}\n#`,
      'tokenizer: bytes': 'tokenizer: {train_bpe: {vocab_size: 300}}',
      'steps: 20': 'steps: 2',
      'interval: 10}': 'interval: 2}',
    });
    const a = await runTraining(first, { backend: 'cpu' });
    const ckpt = a.checkpoint!;
    const tok = await loadTokenizer(ckpt);
    expect(tok.vocabSize).toBe(300);
    expect(tok.decode(tok.encode('The Fox said'))).toBe('The Fox said');
    const second = runFile({
      'model: {config: ': `model: {init_from: ${ckpt}}\n#`,
      'tokenizer: bytes': `tokenizer: {path: ${ckpt}}`,
      'steps: 20': 'steps: 2',
    });
    const b = await runTraining(second, { backend: 'cpu' });
    // Starting from the trained weights: its first loss is near where the first run ended, not ln(300).
    expect(b.firstLoss!).toBeLessThan(a.metrics[0].loss);
    expect(readFileSync(join(b.checkpoint!, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(ckpt, 'tokenizer.json'), 'utf8'),
    );
  });
});

describe('run file', () => {
  const base = {
    model: { config: 'c.json' },
    data: { files: ['a.txt'] },
    seq_len: 16,
    batch: 2,
    steps: 10,
  };
  it('accepts a minimal file with defaults', () => {
    const r = parseRunConfig(base, '/x/run.yaml');
    expect(r.optimizer.kind).toBe('muon');
    expect(r.optimizer.momentum).toBe(0.95);
    expect(r.schedule.kind).toBe('wsd');
    expect(r.runDir).toBe('/x');
  });
  it.each([
    [{ optimizer: { lr: -1 } }, "field 'optimizer.lr' is -1, expected > 0"],
    [{ seq_len: 1.5 }, "field 'seq_len' is 1.5, expected int"],
    [{ optimizer: { kind: 'sgd' } }, `field 'optimizer.kind' is "sgd", expected "muon" or "adamw"`],
    [{ schedule: { warmup: 3 } }, "field 'schedule' has unknown key(s) warmup"],
    [{ schedule: { warmup_steps: 30 } }, "field 'schedule.warmup_steps' is 30, expected <= steps (10)"],
    [{ tokenizer: 'words' }, 'field \'tokenizer\' is "words", which matches none of its allowed forms'],
  ])('rejects %j', (patch, msg) => {
    expect(() => parseRunConfig({ ...base, ...patch }, 'run.yaml')).toThrow(msg);
  });
});

describe('schedules', () => {
  const s = { lr: 1, min_lr: 0.1, warmup_steps: 4, total_steps: 20 };
  it('warmup is linear from lr/warmup to lr', () => {
    expect([0, 1, 2, 3].map((k) => lrAt(k, { ...s, kind: 'constant' }))).toEqual([0.25, 0.5, 0.75, 1]);
  });
  it('wsd holds lr until the decay tail, then decays linearly (or by cosine) toward min_lr', () => {
    const w = { ...s, kind: 'wsd' as const, decay_steps: 8 };
    expect(lrAt(11, w)).toBe(1);
    expect(lrAt(12, w)).toBe(1);
    expect(lrAt(16, w)).toBeCloseTo(0.55, 12);
    expect(lrAt(19, w)).toBeCloseTo(0.1 + 0.9 / 8, 12);
    expect(lrAt(16, { ...w, decay_shape: 'cosine' })).toBeCloseTo(0.55, 12);
    expect(lrAt(14, { ...w, decay_shape: 'cosine' })).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos(Math.PI / 4)), 12);
  });
  it('cosine goes from lr after warmup to min_lr at the end', () => {
    const c = { ...s, kind: 'cosine' as const };
    expect(lrAt(4, c)).toBe(1);
    expect(lrAt(12, c)).toBeCloseTo(0.55, 12);
    expect(lrAt(20, c)).toBeCloseTo(0.1, 12);
  });
});

/** Pre-softmax logits [H, T, T] of an MLA layer on x [T, D] from its weights (host, f64). */
async function mlaLogits(model: KimiLinearModel, layer: number, x: Float32Array, T: number): Promise<Float64Array> {
  const cfg = model.cfg;
  const [H, dn, dr, dv, r, D] = [
    cfg.num_attention_heads,
    cfg.qk_nope_head_dim!,
    cfg.qk_rope_head_dim!,
    cfg.v_head_dim!,
    cfg.kv_lora_rank!,
    cfg.hidden_size,
  ];
  const w = async (n: string) => (await model.w(`model.layers.${layer}.self_attn.${n}`).toFloat32()) as Float32Array;
  const [wq, wa, wb, ln] = [
    await w('q_proj.weight'),
    await w('kv_a_proj_with_mqa.weight'),
    await w('kv_b_proj.weight'),
    await w('kv_a_layernorm.weight'),
  ];
  const mv = (W: Float32Array, v: ArrayLike<number>, rows: number, cols: number) =>
    Array.from({ length: rows }, (_, i) => {
      let s = 0;
      for (let k = 0; k < cols; k++) s += W[i * cols + k] * v[k];
      return s;
    });
  const q: number[][] = [];
  const k: number[][] = [];
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * D, (t + 1) * D);
    q.push(mv(wq, xt, H * (dn + dr), D));
    const a = mv(wa, xt, r + dr, D);
    const c = a.slice(0, r);
    const rms = Math.sqrt(c.reduce((s, v) => s + v * v, 0) / r + 1e-6);
    const kv = mv(
      wb,
      c.map((v, i) => (v / rms) * ln[i]),
      H * (dn + dv),
      r,
    );
    const kt: number[] = [];
    for (let h = 0; h < H; h++) kt.push(...kv.slice(h * (dn + dv), h * (dn + dv) + dn), ...a.slice(r, r + dr));
    k.push(kt);
  }
  const out = new Float64Array(H * T * T);
  for (let h = 0; h < H; h++)
    for (let i = 0; i < T; i++)
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let c = 0; c < dn + dr; c++) s += q[i][h * (dn + dr) + c] * k[j][h * (dn + dr) + c];
        out[(h * T + i) * T + j] = s * (dn + dr) ** -0.5;
      }
  return out;
}

describe.each(devices)('QK-clip on %s', (_n, dev) => {
  it('scales exactly the clipped heads logits by tau/max; other heads, values and the shared rope key untouched', async () => {
    const d = dev();
    const model = new KimiLinearModel(micro, randomModelWeights(micro, d, 'f32', 9));
    const layer = 1; // the MLA layer of the micro model
    const T = 5;
    const x = Float32Array.from({ length: T * micro.hidden_size }, (_, i) => Math.sin(i * 0.7) * 3);
    const before = await mlaLogits(model, layer, x, T);
    const kvA = await model.w(`model.layers.${layer}.self_attn.kv_a_proj_with_mqa.weight`).toFloat32();
    const tau = 100;
    const events = applyQkClip(micro, model.weights, (i) => (i === layer ? [250, 40] : undefined), tau);
    expect(events).toEqual([{ layer, head: 0, maxLogit: 250, gamma: 0.4 }]);
    const after = await mlaLogits(model, layer, x, T);
    const HT = T * T;
    for (let i = 0; i < HT; i++) {
      expect(after[i]).toBeCloseTo(before[i] * 0.4, 4);
      expect(after[HT + i]).toBeCloseTo(before[HT + i], 5);
    }
    expect(Array.from(await model.w(`model.layers.${layer}.self_attn.kv_a_proj_with_mqa.weight`).toFloat32())).toEqual(
      Array.from(kvA),
    );
  });
});

describe('QK-clip factors and MoE balancing', () => {
  it('row factors: q nope rows sqrt(gamma), q rope rows gamma, kv_b k_nope rows sqrt(gamma), v rows 1', () => {
    const { q, kvb } = qkClipFactors(micro, [400, 10], 100);
    const [dn, dr, dv] = [micro.qk_nope_head_dim!, micro.qk_rope_head_dim!, micro.v_head_dim!];
    expect(Array.from(q.subarray(0, dn))).toEqual(new Array(dn).fill(0.5));
    expect(Array.from(q.subarray(dn, dn + dr))).toEqual(new Array(dr).fill(0.25));
    expect(Array.from(q.subarray(dn + dr))).toEqual(new Array(dn + dr).fill(1));
    expect(Array.from(kvb.subarray(0, dn))).toEqual(new Array(dn).fill(0.5));
    expect(Array.from(kvb.subarray(dn))).toEqual(new Array(dv + dn + dv).fill(1));
  });
  it('the bias moves by u toward balance: overloaded down, idle up, exactly-average unchanged', () => {
    const b = Float32Array.of(0, 0, 0.5, 0);
    balanceBias(b, [10, 0, 5, 5], 0.01);
    expect(Array.from(b)).toEqual([Math.fround(-0.01), Math.fround(0.01), 0.5, 0]);
  });
});
