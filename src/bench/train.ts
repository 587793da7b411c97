/**
 * `kimi-linear bench train`: throughput of a whole training step (forward + backward through
 * modelGradients, gradient norms and clip, the Muon/AdamW step, the step's one readback) of the hybrid
 * model and of the same model with every layer MLA, on random f32 weights made on the device.
 *
 * Useful work per step (FLOPs), counted as the usual dense-transformer estimate plus the mixers:
 *   6 * N_act * tokens                                  (matmuls, forward 2 + backward 4 per weight)
 *   + per MLA layer 3 * B * H * T^2 * (d_qk + d_v)      (causal QK^T and PV: forward 2*T^2/2 each, x3)
 *   + per KDA layer 3 * B * H * (6*T*d^2 + 3*T*C*d + T*C^2)   (chunked KDA, C = 64, forward x3)
 * N_act = every weight except the embedding table (a lookup, not a matmul), with routed experts
 * counted at top_k / E of their size. The optimizer's Newton-Schulz work is not counted as useful.
 */
import type { Command } from 'commander';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import { GpuContext } from '../gpu/context.js';
import { type KimiLinearConfig, layerMap, parseKimiConfig } from '../model/config.js';
import { KimiLinearModel } from '../model/forward.js';
import { randomModelWeights } from '../model/randomWeights.js';
import { cpu } from '../tensor/cpuDevice.js';
import type { Device } from '../tensor/tensor.js';
import { parseRunConfig } from '../train/config.js';
import { hash32 } from '../train/data.js';
import { defaultGradientFn } from '../train/gradients.js';
import { Trainer } from '../train/trainer.js';
import { modelGradients } from '../model/gradients.js';
import { setMoeOuterTiled } from '../kernels/moe/outerTiled.wgsl.js';
import {
  setMatmulPlan,
  setMatmulSwizzle,
  setMatmulTilePolicy,
  setMatmulWaveTile,
  traceMatmuls,
  type WaveTileName,
} from '../kernels/matmul/index.js';
import { setMoePlanLocal } from '../kernels/moe/plan.wgsl.js';
import { setMoeRowsThreadRows, setMoeRowsTiled } from '../kernels/moe/rowsTiled.wgsl.js';
import { setKdaParamReduce } from '../kernels/kda/prep.js';
import { setSumToTrailingColumns } from '../kernels/elementwise/backward.js';
import { setElementwiseVec4 } from '../kernels/elementwise/index.js';
import { setLinearFusedAccumulate } from '../kernels/matmul/backward.js';
import { randomUniform } from '../kernels/random/index.js';
import { ATTENTION_KERNELS, type AttentionKernels, setAttentionKernels } from '../kernels/attention/choice.js';
import { compareAttentionKernels } from '../kernels/attention/compare.js';
import { matrixDims, type NewtonSchulzMode, newtonSchulz, setNewtonSchulzMode } from '../train/optim/muon.js';
import { paramList, tensorOf } from '../train/params.js';
import { machine, openBenchDevice, parseList, sumByKernel } from './harness.js';
import { allMlaConfig, readBenchConfig } from './modelConfig.js';

const PRESETS: Record<string, string> = {
  'train-100m': '../../fixtures/configs/train-100m.json',
  tiny: '../../fixtures/train/tiny-model.json',
  micro: '../../fixtures/train/micro-model.json',
};

const KDA_CHUNK = 64;

/** Activated parameters (embedding excluded, routed experts at top_k/E) and total parameters. */
export function parameterCounts(model: KimiLinearModel): { activated: number; total: number } {
  const cfg = model.cfg;
  let activated = 0;
  let total = 0;
  for (const [name, t] of model.weights.tensors) {
    total += t.numel;
    if (name !== 'model.embed_tokens.weight' || cfg.tie_word_embeddings) activated += t.numel;
  }
  for (const e of model.weights.experts.values()) {
    for (const t of [e.w1, e.w2, e.w3]) {
      total += t.numel;
      activated += (t.numel * cfg.num_experts_per_token!) / cfg.num_experts!;
    }
  }
  return { activated, total };
}

/** Useful FLOPs of one training step on B sequences of T tokens (formula in the file comment). */
export function trainStepFlops(
  model: KimiLinearModel,
  B: number,
  T: number,
): { total: number; matmul: number; mixer: number } {
  const cfg = model.cfg;
  const matmul = 6 * parameterCounts(model).activated * B * T;
  let mixer = 0;
  for (const l of layerMap(cfg)) {
    if (l.mixer === 'mla') {
      const dqk = cfg.qk_nope_head_dim! + cfg.qk_rope_head_dim!;
      mixer += 3 * B * cfg.num_attention_heads * T * T * (dqk + cfg.v_head_dim!);
    } else {
      const { num_heads: H, head_dim: d } = cfg.linear_attn_config!;
      const C = KDA_CHUNK;
      mixer += 3 * B * H * (6 * T * d * d + 3 * T * C * d + T * C * C);
    }
  }
  return { total: matmul + mixer, matmul, mixer };
}

export interface TrainBenchOptions {
  seqLen: number;
  batch: number;
  steps: number;
  warmup: number;
  variants: ('hybrid' | 'all-MLA')[];
  optimizer: 'muon' | 'adamw';
  /** Also time each kernel of one forward + backward (modelGradients), per variant. */
  profile?: boolean;
  /** The Newton-Schulz chain in use (set by the caller with setNewtonSchulzMode); the profile compares with 'plain'. */
  newtonSchulz?: NewtonSchulzMode;
}

/**
 * The `matmul_tiled` spans of a profile by shape (labels from traceMatmuls, in dispatch order): GPU ms,
 * dispatches and TFLOP/s per label, largest first.
 */
function matmulShapes(spans: readonly { name: string; ms: number }[], labels: readonly string[]) {
  const tiled = spans.filter((d) => d.name === 'matmul_tiled');
  if (tiled.length !== labels.length) return { error: `${tiled.length} matmul spans but ${labels.length} labels` };
  const by = new Map<string, { shape: string; ms: number; dispatches: number; flops: number }>();
  for (const [i, d] of tiled.entries()) {
    const [batch, M, N, K] = labels[i].split(' ')[0].split('x').map(Number);
    const e = by.get(labels[i]) ?? { shape: labels[i], ms: 0, dispatches: 0, flops: 0 };
    e.ms += d.ms;
    e.dispatches++;
    e.flops += 2 * batch * M * N * K;
    by.set(labels[i], e);
  }
  return [...by.values()]
    .sort((a, b) => b.ms - a.ms)
    .map((e) => ({ ...e, ms: Number(e.ms.toFixed(3)), tflops: Number((e.flops / e.ms / 1e9).toFixed(1)) }));
}

/**
 * Per-kernel GPU time of one forward + backward (no optimizer step), summed by kernel name, largest first.
 * A failure (e.g. more dispatches than the profiler holds) is reported instead of ending the benchmark.
 */
async function profileGradients(gpu: GpuContext, model: KimiLinearModel, batch: number, seqLen: number) {
  const V = model.cfg.vocab_size;
  const ids = gpu.fromHost(
    Int32Array.from({ length: batch * seqLen }, (_, i) => hash32(0, 0, i) % V),
    [batch, seqLen],
    'i32',
  );
  const labels: string[] = [];
  try {
    traceMatmuls(labels);
    const spans = await gpu.profile(() => {
      const r = modelGradients(model, ids);
      r.loss.dispose();
      r.grads.dispose();
      for (const t of r.stats.values()) t.dispose();
    });
    traceMatmuls(undefined);
    const kernels = sumByKernel(spans)
      .sort((a, b) => b.ms - a.ms)
      .map((k) => ({ ...k, ms: Number(k.ms.toFixed(3)) }));
    return {
      gpuMs: Number(spans.reduce((a, d) => a + d.ms, 0).toFixed(3)),
      dispatches: spans.length,
      kernels,
      matmulShapes: matmulShapes(spans, labels),
    };
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    traceMatmuls(undefined);
    ids.dispose();
    await gpu.sync();
  }
}

/**
 * Per-kernel GPU time of the Newton-Schulz orthogonalisation Muon runs each step: one batched chain per
 * matrix shape, as Optimizer.apply groups them, on random matrices (its cost does not depend on values).
 */
async function profileNewtonSchulz(gpu: GpuContext, model: KimiLinearModel, nsModeInUse: NewtonSchulzMode) {
  const groups = new Map<string, { E: number; rows: number; cols: number }>();
  for (const p of paramList(model.weights, { muon: true })) {
    if (p.group !== 'muon') continue;
    // As Optimizer.apply groups them: one chain per shape up to a transpose, in the wide orientation.
    const [E, r, c] = matrixDims(tensorOf(model.weights, p.name));
    const [rows, cols] = [Math.min(r, c), Math.max(r, c)];
    const g = groups.get(`${rows}x${cols}`) ?? { E: 0, rows, cols };
    g.E += E;
    groups.set(`${rows}x${cols}`, g);
  }
  const inputs = [...groups.values()].map((g, i) => ({
    ...g,
    u: randomUniform(gpu, [g.E, g.rows, g.cols], { seed: i + 1 }),
  }));
  // Newton-Schulz FLOPs per matrix (wide orientation r <= c): 5 x (X X^T 2r^2c + A A 2r^3 + B X 2r^2c).
  const flops = inputs.reduce((n, g) => {
    const r = Math.min(g.rows, g.cols);
    const c = Math.max(g.rows, g.cols);
    return n + g.E * 5 * (4 * r * r * c + 2 * r * r * r);
  }, 0);
  const labels: string[] = [];
  try {
    await gpu.sync();
    traceMatmuls(labels);
    const spans = await gpu.profile(() => {
      for (const g of inputs) newtonSchulz(g.u, g.E, g.rows, g.cols).dispose();
    });
    traceMatmuls(undefined);
    const gpuMs = spans.reduce((a, d) => a + d.ms, 0);
    // The chain as run against the plain one on the same inputs: largest difference relative to max |plain|.
    let maxRelDiffVsPlain = 0;
    for (const g of inputs) {
      const run = async () => {
        const o = newtonSchulz(g.u, g.E, g.rows, g.cols);
        const host = (await o.read()) as Float32Array;
        o.dispose();
        return host;
      };
      const fused = await run();
      setNewtonSchulzMode('plain');
      const plain = await run();
      setNewtonSchulzMode(nsModeInUse);
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < plain.length; i++) {
        diff = Math.max(diff, Math.abs(fused[i] - plain[i]));
        scale = Math.max(scale, Math.abs(plain[i]));
      }
      maxRelDiffVsPlain = Math.max(maxRelDiffVsPlain, diff / scale);
    }
    const kernels = sumByKernel(spans)
      .sort((a, b) => b.ms - a.ms)
      .map((k) => ({ ...k, ms: Number(k.ms.toFixed(3)) }));
    return {
      groups: inputs.map((g) => `${g.E}x${g.rows}x${g.cols}`),
      flops,
      gpuMs: Number(gpuMs.toFixed(3)),
      tflops: Number((flops / (gpuMs / 1000) / 1e12).toFixed(2)),
      dispatches: spans.length,
      kernels,
      matmulShapes: matmulShapes(spans, labels),
      maxRelDiffVsPlain,
    };
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    traceMatmuls(undefined);
    setNewtonSchulzMode(nsModeInUse);
    for (const g of inputs) g.u.dispose();
    await gpu.sync();
  }
}

export async function benchTrain(device: Device, json: Record<string, unknown>, o: TrainBenchOptions) {
  const rows: Record<string, unknown>[] = [];
  for (const name of o.variants) {
    const cfg: KimiLinearConfig = parseKimiConfig(name === 'all-MLA' ? allMlaConfig(json) : json, `${name} config`);
    const model = new KimiLinearModel(cfg, randomModelWeights(cfg, device, 'f32', 1));
    // The trainer proper, with a synthetic run (no files are read or written while timing).
    const run = parseRunConfig(
      {
        model: { config: cfg },
        data: { files: ['(synthetic)'] },
        seq_len: o.seqLen,
        batch: o.batch,
        steps: o.warmup + o.steps,
        optimizer: { kind: o.optimizer, lr: 1e-3, moe_bias_rate: 0 },
        spike: { min_steps: 1_000_000 },
      },
      '/nonexistent/bench.yaml',
    );
    const V = cfg.vocab_size;
    const trainer = new Trainer({
      run,
      model,
      device,
      source: {
        next: async (step, micro) =>
          Int32Array.from({ length: o.batch * o.seqLen }, (_, i) => hash32(step, micro, i) % V),
        state: () => null,
        close: async () => {},
      },
      evalSets: [],
      gradFn: defaultGradientFn,
      configHash: 'bench',
      checkpointDir: '/nonexistent',
      metricsPath: '/nonexistent',
    });
    const times: number[] = [];
    let loss = Number.NaN;
    // The last step's gradient norm: with the loss, an end-to-end check that two kernel paths (A/B flags)
    // give the same numbers up to rounding.
    let gradNorm = Number.NaN;
    // Buffers created during the timed steps: 0 in a steady state; more means the pool's free list passed
    // its cap and buffers were destroyed, so every step pays allocation (and new bind groups) again.
    const created = () => (device instanceof GpuContext ? device.pool.stats().created : 0);
    const misses = () => (device instanceof GpuContext ? device.bindGroups.misses : 0);
    let createdBefore = 0;
    let missesBefore = 0;
    for (let s = 0; s < o.warmup + o.steps; s++) {
      if (s === o.warmup) {
        createdBefore = created();
        missesBefore = misses();
      }
      const t0 = performance.now();
      const m = await trainer.trainStep();
      if (s >= o.warmup) times.push(performance.now() - t0);
      loss = m.loss;
      gradNorm = m.grad_norm;
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)];
    const tokens = o.batch * o.seqLen;
    const flops = trainStepFlops(model, o.batch, o.seqLen);
    const counts = parameterCounts(model);
    rows.push({
      model: name,
      params: counts.total,
      activatedParams: counts.activated,
      seqLen: o.seqLen,
      batch: o.batch,
      stepMs: ms,
      tokensPerS: tokens / (ms / 1000),
      flopsPerStep: flops.total,
      mixerFlopsShare: flops.mixer / flops.total,
      tflops: flops.total / (ms / 1000) / 1e12,
      loss,
      gradNorm,
      stepMsTrials: times,
      buffersCreatedPerTimedStep: (created() - createdBefore) / o.steps,
      // Bind groups created per timed step (each ~16-20 us of host time): near 0 in a steady state.
      bindGroupMissesPerTimedStep: (misses() - missesBefore) / o.steps,
    });
    const profile =
      o.profile && device instanceof GpuContext ? await profileGradients(device, model, o.batch, o.seqLen) : undefined;
    if (profile) rows[rows.length - 1].gradientsProfile = profile;
    if (o.profile && o.optimizer === 'muon' && device instanceof GpuContext) {
      rows[rows.length - 1].newtonSchulzProfile = await profileNewtonSchulz(device, model, o.newtonSchulz ?? 'fused');
    }
    trainer.dispose();
    model.weights.dispose();
    if (device instanceof GpuContext) await device.releaseMemory();
  }
  const h = rows.find((r) => r.model === 'hybrid');
  const m = rows.find((r) => r.model === 'all-MLA');
  return {
    bench: 'train',
    machine: device instanceof GpuContext ? machine(device) : { backend: 'cpu', date: new Date().toISOString() },
    weights: 'random f32, made on the device',
    optimizer: o.optimizer,
    flopFormula:
      '6*N_act*tokens + per MLA layer 3*B*H*T^2*(d_qk+d_v) + per KDA layer 3*B*H*(6*T*d^2+3*T*C*d+T*C^2), C=64; N_act excludes the embedding, routed experts at top_k/E',
    rows,
    hybridOverAllMlaTokensPerS: h && m ? (h.tokensPerS as number) / (m.tokensPerS as number) : null,
    notes: [
      'step = forward + backward (modelGradients) + gradient norms/clip + optimizer step + one readback; host wall time, median of the timed steps',
      `${o.warmup} untimed warm-up step(s) per variant (pipelines compiled, buffers pooled)`,
    ],
  };
}

export function registerTrainBench(bench: Command): void {
  const cmd = bench
    .command('train')
    .description('training-step throughput (tokens/s, TFLOP/s), hybrid vs all-MLA, random f32 weights')
    .option('--config <file>', 'config.json of the model')
    .option('--preset <name>', `a bundled config: ${Object.keys(PRESETS).join(', ')}`)
    .option('--seq-len <n>', 'tokens per sequence', '4096')
    .option('--batch <n>', 'sequences per step', '1')
    .option('--steps <n>', 'timed steps per variant', '3')
    .option(
      '--warmup <n>',
      'untimed steps first (3: the bind-group cache and buffer pool settle over the first two or three steps)',
      '3',
    )
    .option('--optimizer <kind>', 'muon | adamw', 'muon')
    .option(
      '--matmul-tiles <policy>',
      'mid (default: 128x64 tiles for mid-sized products) | two (128x128 or 64x64 only)',
      'mid',
    )
    .option(
      '--newton-schulz <mode>',
      'fused (default: symmetric products, matmul epilogues) | plain (the earlier chain, for comparison)',
      'fused',
    )
    .option(
      '--moe-rows <kind>',
      'tiled (default: register-tiled expert row matmuls) | scalar (the earlier ones)',
      'tiled',
    )
    .option(
      '--moe-rows-thread <rows>',
      'rows per thread of the tiled expert row kernels: mode (default: 8 for one weight, 4 for two) | 8 | 4',
      'mode',
    )
    .option(
      '--moe-plan <kind>',
      'atomic (default: workgroup atomics) | local (counts in registers and a scan, plan.wgsl.ts; slower on the H200)',
      'atomic',
    )
    .option(
      '--matmul-plan <policy>',
      "wave (default: tuned + whole-wave tiles, narrow-output split-K, vector K tails) | tuned (choosePlan's measured tile / split-K rules) | plain (chooseTile and the A^T B split only)",
      'wave',
    )
    .option('--matmul-wave-tile <tile>', "the wave plan's tile: 64x192 (default) | 128x96 | 128x192", '64x192')
    .option(
      '--moe-outer <kind>',
      "tiled (default: register-tiled expert weight gradients, outerTiled.wgsl.ts) | split (outerSplit's 64 x 64 kernel)",
      'tiled',
    )
    .option('--matmul-swizzle <on|off>', "on (default): the tiled matmul's swizzled workgroup tiles | off", 'on')
    .option(
      '--kda-param-reduce <kind>',
      'split (default: two-pass parallel dA_log / ddt_bias sums) | single (one workgroup per head, the earlier one)',
      'split',
    )
    .option(
      '--sum-columns <on|off>',
      'on (default): broadcast gradients (norm weights, conv) summed as column sums | off: transposed copy + row sums',
      'on',
    )
    .option(
      '--elementwise-vec4 <on|off>',
      'on (default): elementwise kernels on f32 sizes divisible by 4 run 4 per thread (vec4) | off: scalar',
      'on',
    )
    .option(
      '--linear-accumulate <kind>',
      "epilogue (default): a linear's dX adds the gradient already held for x in the matmul epilogue | add: the tape adds it",
      'epilogue',
    )
    .option(
      '--attention <kind>',
      'wide-half (default): 8x4-tile attention kernels, half the score tile in workgroup memory at a time | wide: all of it | wide-quarter: a quarter | tiled: the previous 4x4 kernels',
      'wide-half',
    )
    .option(
      '--attention-check',
      "first run every attention kernel set (tiled, wide, wide-half, wide-quarter) on the same random inputs at the model's MLA shape: max relative differences to tiled and per-kernel GPU ms",
    )
    .option(
      '--pool-free-gib <n>',
      "fixed free-list cap of the GPU buffer pool in GiB (default: the trainer raises the pool's 8 to the first step's peak of live bytes, so no step re-creates its buffers)",
    )
    .option('--variants <list>', 'hybrid, all-MLA or both', 'hybrid,all-MLA')
    .option('--backend <b>', 'webgpu | cpu', 'webgpu')
    .option('--profile', 'also time each kernel of one forward + backward per variant (GPU timestamps per dispatch)')
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(
    async (
      opts: Record<string, string> & GpuFlagOptions & { json?: boolean; profile?: boolean; attentionCheck?: boolean },
    ) => {
      if (!!opts.config === !!opts.preset) throw new Error('bench train: give exactly one of --config or --preset');
      const json = await readBenchConfig(opts.config, opts.preset, PRESETS);
      const variants = opts.variants.split(',').map((v) => v.trim());
      for (const v of variants)
        if (v !== 'hybrid' && v !== 'all-MLA') throw new Error(`--variants: '${v}' is not hybrid or all-MLA`);
      if (opts.optimizer !== 'muon' && opts.optimizer !== 'adamw')
        throw new Error(`--optimizer: '${opts.optimizer}' is not muon or adamw`);
      if (opts.matmulTiles !== 'mid' && opts.matmulTiles !== 'two')
        throw new Error(`--matmul-tiles: '${opts.matmulTiles}' is not mid or two`);
      setMatmulTilePolicy(opts.matmulTiles);
      if (opts.newtonSchulz !== 'fused' && opts.newtonSchulz !== 'plain')
        throw new Error(`--newton-schulz: '${opts.newtonSchulz}' is not fused or plain`);
      setNewtonSchulzMode(opts.newtonSchulz);
      if (opts.moeRows !== 'tiled' && opts.moeRows !== 'scalar')
        throw new Error(`--moe-rows: '${opts.moeRows}' is not tiled or scalar`);
      setMoeRowsTiled(opts.moeRows === 'tiled');
      if (opts.matmulPlan !== 'tuned' && opts.matmulPlan !== 'plain' && opts.matmulPlan !== 'wave')
        throw new Error(`--matmul-plan: '${opts.matmulPlan}' is not tuned, plain or wave`);
      setMatmulPlan(opts.matmulPlan);
      if (!['64x192', '128x96', '128x192'].includes(opts.matmulWaveTile))
        throw new Error(`--matmul-wave-tile: '${opts.matmulWaveTile}' is not 64x192, 128x96 or 128x192`);
      setMatmulWaveTile(opts.matmulWaveTile as WaveTileName);
      if (opts.moeOuter !== 'tiled' && opts.moeOuter !== 'split')
        throw new Error(`--moe-outer: '${opts.moeOuter}' is not tiled or split`);
      setMoeOuterTiled(opts.moeOuter === 'tiled');
      if (!['mode', '8', '4'].includes(opts.moeRowsThread))
        throw new Error(`--moe-rows-thread: '${opts.moeRowsThread}' is not mode, 8 or 4`);
      setMoeRowsThreadRows(opts.moeRowsThread === 'mode' ? 'mode' : opts.moeRowsThread === '8' ? 8 : 4);
      if (opts.moePlan !== 'local' && opts.moePlan !== 'atomic')
        throw new Error(`--moe-plan: '${opts.moePlan}' is not local or atomic`);
      setMoePlanLocal(opts.moePlan === 'local');
      if (opts.matmulSwizzle !== 'on' && opts.matmulSwizzle !== 'off')
        throw new Error(`--matmul-swizzle: '${opts.matmulSwizzle}' is not on or off`);
      setMatmulSwizzle(opts.matmulSwizzle === 'on');
      if (opts.kdaParamReduce !== 'split' && opts.kdaParamReduce !== 'single')
        throw new Error(`--kda-param-reduce: '${opts.kdaParamReduce}' is not split or single`);
      setKdaParamReduce(opts.kdaParamReduce);
      if (opts.sumColumns !== 'on' && opts.sumColumns !== 'off')
        throw new Error(`--sum-columns: '${opts.sumColumns}' is not on or off`);
      setSumToTrailingColumns(opts.sumColumns === 'on');
      if (opts.elementwiseVec4 !== 'on' && opts.elementwiseVec4 !== 'off')
        throw new Error(`--elementwise-vec4: '${opts.elementwiseVec4}' is not on or off`);
      setElementwiseVec4(opts.elementwiseVec4 === 'on');
      if (opts.linearAccumulate !== 'epilogue' && opts.linearAccumulate !== 'add')
        throw new Error(`--linear-accumulate: '${opts.linearAccumulate}' is not epilogue or add`);
      setLinearFusedAccumulate(opts.linearAccumulate === 'epilogue');
      if (!(ATTENTION_KERNELS as readonly string[]).includes(opts.attention))
        throw new Error(`--attention: '${opts.attention}' is not one of ${ATTENTION_KERNELS.join(', ')}`);
      setAttentionKernels(opts.attention as AttentionKernels);
      if (opts.backend !== 'webgpu' && opts.backend !== 'cpu')
        throw new Error(`--backend: '${opts.backend}' is not webgpu or cpu`);
      const device: Device = opts.backend === 'cpu' ? cpu : await openBenchDevice(opts);
      // Before the training runs, at the MLA layers' shape: B = batch, T = seq-len, H heads, Dk = nope + rope.
      const attentionCheck =
        opts.attentionCheck && device instanceof GpuContext
          ? await compareAttentionKernels(device, {
              B: parseList(opts.batch)[0],
              T: parseList(opts.seqLen)[0],
              H: Number(json.num_attention_heads),
              Dk: Number(json.qk_nope_head_dim) + Number(json.qk_rope_head_dim),
              Dv: Number(json.v_head_dim),
            })
          : undefined;
      if (opts.poolFreeGib !== undefined) {
        const gib = Number(opts.poolFreeGib);
        if (!(gib > 0)) throw new Error(`--pool-free-gib: '${opts.poolFreeGib}' is not a positive number`);
        if (device instanceof GpuContext) {
          device.pool.maxFreeBytes = gib * 2 ** 30;
          device.pool.fixedFreeCap = true;
        }
      }
      const r = await benchTrain(device, json, {
        seqLen: parseList(opts.seqLen)[0],
        batch: parseList(opts.batch)[0],
        steps: parseList(opts.steps)[0],
        warmup: Number(opts.warmup) >= 0 ? Number(opts.warmup) : 1,
        variants: variants as ('hybrid' | 'all-MLA')[],
        optimizer: opts.optimizer,
        profile: !!opts.profile,
        newtonSchulz: opts.newtonSchulz,
      });
      if (opts.json) {
        printJson({
          ...r,
          matmulTiles: opts.matmulTiles,
          newtonSchulz: opts.newtonSchulz,
          moeRows: opts.moeRows,
          matmulPlan: opts.matmulPlan,
          matmulWaveTile: opts.matmulWaveTile,
          moeOuter: opts.moeOuter,
          moeRowsThread: opts.moeRowsThread,
          moePlan: opts.moePlan,
          poolFreeGib: opts.poolFreeGib ?? null,
          matmulSwizzle: opts.matmulSwizzle,
          kdaParamReduce: opts.kdaParamReduce,
          sumColumns: opts.sumColumns,
          elementwiseVec4: opts.elementwiseVec4,
          linearAccumulate: opts.linearAccumulate,
          attention: opts.attention,
          ...(attentionCheck ? { attentionCheck } : {}),
        });
        return;
      }
      process.stdout.write(
        `${renderTable(
          r.rows.map((x) => ({
            model: x.model,
            'params (act)': `${((x.params as number) / 1e6).toFixed(3)}M (${((x.activatedParams as number) / 1e6).toFixed(3)}M)`,
            'T x B': `${x.seqLen} x ${x.batch}`,
            'step ms': (x.stepMs as number).toFixed(1),
            'tokens/s': Math.round(x.tokensPerS as number),
            'TFLOP/s': (x.tflops as number).toFixed(4),
          })),
        )}\n`,
      );
    },
  );
}
