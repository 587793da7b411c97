/**
 * Data benchmarks: `data bench pipeline` (generated JSONL through the full build: clean + dedup + tokenize +
 * shards, with peak RSS) and `data bench loader` (packed batches per second from a synthetic dataset).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, DATASET_FORMAT } from './build.js';
import { writeCorpus } from './generate.js';
import { mulberry32 } from './hash.js';
import { DataLoader } from './loader.js';
import { defaultWorkers } from './pipeline.js';
import { shardName } from './shards.js';

/** Peak resident set (VmHWM) in bytes, and a poller of process.memoryUsage().rss as a cross-check. */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {}
  return process.memoryUsage().rss;
}

function machine() {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, node: process.version };
}

export interface PipelineBenchOptions {
  sizeGb: number;
  dir?: string;
  keep?: boolean;
  seed?: number;
  workers?: number;
  log?: (m: string) => void;
}

export async function benchPipeline(o: PipelineBenchOptions): Promise<Record<string, unknown>> {
  const log = o.log ?? (() => {});
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'kimi-data-bench-'));
  mkdirSync(join(dir, 'corpus'), { recursive: true });
  let polled = 0;
  const poll = setInterval(() => {
    polled = Math.max(polled, process.memoryUsage().rss);
  }, 250);
  poll.unref();
  try {
    const bytes = Math.round(o.sizeGb * 1e9);
    const t0 = performance.now();
    // Several files, like a real corpus; each ~ 500 MB at most.
    const nFiles = Math.max(1, Math.ceil(bytes / 5e8));
    const gen = { distinct: 0, exact: 0, near: 0, junk: 0, pii: 0, malformed: 0, bytes: 0 };
    for (let i = 0; i < nFiles; i++) {
      const c = writeCorpus(join(dir, 'corpus', `part-${String(i).padStart(3, '0')}.jsonl`), bytes / nFiles, {
        seed: (o.seed ?? 1) + i,
      });
      for (const k of Object.keys(gen) as (keyof typeof gen)[]) gen[k] += c[k];
    }
    const genSeconds = (performance.now() - t0) / 1000;
    log(`generated ${(gen.bytes / 1e9).toFixed(2)} GB in ${genSeconds.toFixed(1)} s`);
    const rssBefore = peakRss();
    writeFileSync(
      join(dir, 'recipe.yaml'),
      [
        'name: bench',
        'seed: 1',
        'sources:',
        '  - name: web',
        '    paths: [corpus]',
        'tokenizer:',
        '  train: {vocab_size: 8192, sample_mb: 4}',
        'stages:',
        '  pretrain:',
        '    mix: [{source: web, weight: 1}]',
        '',
      ].join('\n'),
    );
    const t1 = performance.now();
    const m = await buildDataset({
      recipe: join(dir, 'recipe.yaml'),
      out: join(dir, 'dataset'),
      force: true,
      log,
      workers: o.workers,
    });
    const buildSeconds = (performance.now() - t1) / 1000;
    const src = m.sources.web.report as Record<string, unknown>;
    const st = m.stages.pretrain;
    const passSeconds = src.seconds as number;
    return {
      bench: 'data-pipeline',
      date: new Date().toISOString(),
      machine: machine(),
      size_gb: Number((gen.bytes / 1e9).toFixed(3)),
      generated: gen,
      generate_seconds: Number(genSeconds.toFixed(1)),
      tokenizer_train_seconds: m.tokenizer.train_seconds,
      pass_seconds: Number(passSeconds.toFixed(1)),
      build_seconds: Number(buildSeconds.toFixed(1)),
      mb_per_s_pass: Number((gen.bytes / 1e6 / passSeconds).toFixed(2)),
      mb_per_s_build: Number((gen.bytes / 1e6 / buildSeconds).toFixed(2)),
      docs_per_s: Math.round((src.in as number) / passSeconds),
      tokens_per_s: Math.round(m.sources.web.tokens / passSeconds),
      in: src.in,
      kept: src.kept,
      dropped: src.dropped,
      malformed: (src.malformed as { count: number }).count,
      pii: src.pii,
      tokens: st.tokens,
      dedup_index_mb: Number((((m.dedup as { index_bytes: number }).index_bytes ?? 0) / 1e6).toFixed(1)),
      peak_rss_mb: Math.round(peakRss() / 1e6),
      peak_rss_polled_mb: Math.round(Math.max(polled, process.memoryUsage().rss) / 1e6),
      rss_before_build_mb: Math.round(rssBefore / 1e6),
      version_id: m.version_id,
      workers: o.workers ?? defaultWorkers(),
      dir: o.keep ? dir : undefined,
    };
  } finally {
    clearInterval(poll);
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes a dataset of random tokens and documents without a build (loader benchmarks and tests). */
export function writeSyntheticDataset(
  dir: string,
  tokens: number,
  opts: { seed?: number; meanDoc?: number; shardTokens?: number } = {},
) {
  const stageDir = join(dir, 'stages', 'pretrain');
  mkdirSync(stageDir, { recursive: true });
  const rnd = mulberry32(opts.seed ?? 7);
  const shardTokens = opts.shardTokens ?? 1 << 26;
  const shards: { file: string; tokens: number; sha256: string }[] = [];
  for (let s = 0; s * shardTokens < tokens; s++) {
    const n = Math.min(shardTokens, tokens - s * shardTokens);
    const a = new Uint32Array(n);
    for (let i = 0; i < n; i++) a[i] = (s * shardTokens + i) % 50000;
    writeFileSync(join(stageDir, shardName(s)), Buffer.from(a.buffer));
    shards.push({ file: shardName(s), tokens: n, sha256: '' });
  }
  const offs: bigint[] = [0n];
  let pos = 0;
  const mean = opts.meanDoc ?? 600;
  while (pos < tokens) {
    pos = Math.min(tokens, pos + 1 + Math.floor(rnd() * 2 * mean));
    offs.push(BigInt(pos));
  }
  writeFileSync(join(stageDir, 'offsets.u64'), Buffer.from(BigUint64Array.from(offs).buffer));
  writeFileSync(join(stageDir, 'docs.u32'), Buffer.from(new Uint32Array((offs.length - 1) * 4).buffer));
  const manifest = {
    format: DATASET_FORMAT,
    version_id: 'vsynthetic',
    token_dtype: 'uint32',
    shard_tokens: shardTokens,
    stages: {
      pretrain: {
        docs: offs.length - 1,
        tokens,
        shards,
        offsets_file: 'stages/pretrain/offsets.u64',
        docs_file: 'stages/pretrain/docs.u32',
        mix: [],
      },
    },
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
}

export interface LoaderBenchOptions {
  tokens?: number;
  seqLen?: number;
  batchSize?: number;
  seconds?: number;
  prefetch?: number;
}

export async function benchLoader(o: LoaderBenchOptions = {}): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'kimi-loader-bench-'));
  const tokens = o.tokens ?? 64 * 2 ** 20;
  const seqLen = o.seqLen ?? 4096;
  const batchSize = o.batchSize ?? 8;
  const seconds = o.seconds ?? 3;
  try {
    writeSyntheticDataset(dir, tokens);
    const results: Record<string, unknown>[] = [];
    for (const prefetch of o.prefetch !== undefined ? [o.prefetch] : [4, 0]) {
      const dl = await DataLoader.open({ dataset: dir, stage: 'pretrain', seqLen, batchSize, seed: 1, prefetch });
      await dl.next(); // warm-up (worker start, page cache)
      let n = 0;
      let batches = 0;
      let segments = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        const b = await dl.next();
        n += b.tokens.length;
        segments += b.cuSeqlens.length - 1;
        batches++;
      }
      const dt = (performance.now() - t0) / 1000;
      await dl.close();
      results.push({
        prefetch,
        batches,
        tokens: n,
        seconds: Number(dt.toFixed(2)),
        tokens_per_s: Math.round(n / dt),
        mean_segments_per_batch: Number((segments / batches).toFixed(1)),
      });
    }
    return {
      bench: 'data-loader',
      date: new Date().toISOString(),
      machine: machine(),
      dataset_tokens: tokens,
      seq_len: seqLen,
      batch_size: batchSize,
      results,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
