/**
 * `kimi-linear data ...`: the data pipeline. Stage commands (clean, dedup, stats) stream JSONL/Parquet/CSV/text
 * and write reports; `build` turns a recipe into a versioned token dataset; `trace` maps token spans back to
 * source records; `tokenizer train` trains a byte-level BPE; `bench` measures the pipeline and the loader.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { benchLoader, benchPipeline } from '../data/bench.js';
import { buildDataset } from '../data/build.js';
import { DEFAULT_CLEAN, DEFAULT_QUALITY } from '../data/clean.js';
import { runStages, textSource } from '../data/pipeline.js';
import { listInputs } from '../data/read.js';
import { cleanStage, dedupStage, statsStage } from '../data/stages.js';
import { trace } from '../data/trace.js';
import { loadTokenizer } from '../io/tokenizer/index.js';
import { PreTokenCounter, trainBpe } from '../io/tokenizer/train.js';
import { Report, renderTable } from '../data/report.js';
import { intOption, numberOption, printJson } from './shared.js';

const int = intOption;
const float = numberOption;

function emit(report: Report, json: boolean | undefined): void {
  if (json) printJson(report.toJSON());
  else process.stdout.write(`${report.render()}\n`);
}

export function registerData(program: Command): void {
  const data = program
    .command('data')
    .description('data pipeline: clean, dedup, stats, tokenizer, build, trace, bench');

  const io = (c: Command) =>
    c
      .requiredOption('--in <paths...>', 'input files or folders (.jsonl/.parquet/.csv/.txt, .gz/.zst)')
      .option('--out <file>', 'output .jsonl or .parquet')
      .option('--text-field <name>', 'record field holding the text', 'text')
      .option('--report <file.json>', 'write the report as JSON')
      .option(
        '--workers <n>',
        'worker threads for the per-record work (default: one per core; 0 = main thread)',
        int('--workers'),
      )
      .option('--json', 'print the report as JSON instead of tables');

  io(data.command('clean').description('normalise Unicode/whitespace, apply quality rules, scrub PII'))
    .option('--unicode <form>', 'NFC | NFKC | none', 'NFC')
    .option('--no-quality', 'skip the quality rules')
    .option('--no-pii', 'skip PII scrubbing')
    .option('--min-words <n>', 'quality: minimum words', int('--min-words'))
    .action(async (o) => {
      if (!['NFC', 'NFKC', 'none'].includes(o.unicode))
        throw new Error(`--unicode: '${o.unicode}' is not NFC, NFKC or none`);
      const quality = { ...DEFAULT_QUALITY, ...(o.minWords !== undefined ? { min_words: o.minWords } : {}) };
      const off = Object.fromEntries(Object.keys(DEFAULT_QUALITY).map((k) => [k, null])) as unknown as typeof quality;
      const clean = {
        normalize: { ...DEFAULT_CLEAN.normalize, unicode: o.unicode },
        quality: o.quality ? quality : off,
        pii: { ...DEFAULT_CLEAN.pii, ...(o.pii ? {} : { email: false, phone: false, ip: false, card: false }) },
      };
      emit(
        await cleanStage({
          inputs: o.in,
          out: o.out,
          textField: o.textField,
          report: o.report,
          clean,
          workers: o.workers,
        }),
        o.json,
      );
    });

  io(data.command('dedup').description('remove exact and near duplicates (MinHash + LSH), first occurrence kept'))
    .option('--threshold <j>', 'Jaccard threshold for near duplicates', float('--threshold'), 0.8)
    .option('--shingle <n>', 'words per shingle', int('--shingle'), 5)
    .option('--permutations <n>', 'MinHash permutations', int('--permutations'), 128)
    .option('--bands <n>', 'LSH bands (permutations must be a multiple)', int('--bands'), 16)
    .option('--seed <n>', 'MinHash seed', int('--seed'), 1)
    .option('--no-exact', 'skip exact dedup')
    .option('--no-near', 'skip near dedup')
    .option('--clusters <file.jsonl>', 'write one line per removed duplicate with its representative')
    .action(async (o) => {
      const dedup = {
        threshold: o.threshold,
        shingle: o.shingle,
        permutations: o.permutations,
        bands: o.bands,
        seed: o.seed,
        exact: o.exact,
        near: o.near,
      };
      emit(
        await dedupStage({
          inputs: o.in,
          out: o.out,
          textField: o.textField,
          report: o.report,
          dedup,
          clusters: o.clusters,
        }),
        o.json,
      );
    });

  io(data.command('stats').description('counts, lengths, malformed records, optional token counts'))
    .option('--tokenizer <file>', 'tokenizer.json or .tiktoken for token counts')
    .action(async (o) => {
      const tokenizer = o.tokenizer ? await loadTokenizer(o.tokenizer) : undefined;
      const r = await statsStage({ inputs: o.in, out: o.out, textField: o.textField, report: o.report, tokenizer });
      if (o.json) printJson(r.toJSON());
      else process.stdout.write(`${r.render()}\n${renderTable([r.extra.stats as Record<string, unknown>])}\n`);
    });

  const tok = data.command('tokenizer').description('tokenizers: train a byte-level BPE');
  tok
    .command('train')
    .description('train a byte-level BPE on a sample of the inputs; writes a Hugging Face tokenizer.json')
    .requiredOption('--in <paths...>', 'input files or folders')
    .requiredOption('--out <tokenizer.json>', 'output file')
    .option('--vocab-size <n>', 'vocabulary size including bytes and special tokens', int('--vocab-size'), 8192)
    .option('--sample-mb <mb>', 'characters of text to sample (millions)', float('--sample-mb'), 4)
    .option('--min-frequency <n>', 'stop when the best pair is rarer', int('--min-frequency'), 2)
    .option('--special <tokens...>', 'special tokens', ['<|endoftext|>'])
    .option('--text-field <name>', 'record field holding the text', 'text')
    .option('--json', 'print a JSON summary')
    .action(async (o) => {
      const { files } = listInputs(o.in);
      const counter = new PreTokenCounter();
      const t0 = performance.now();
      const report = new Report('tokenizer-sample');
      await runStages({
        files,
        source: textSource('input', o.textField),
        clean: null,
        deduper: null,
        report,
        onKept: (d) => counter.add(d.docs[0].body),
        until: () => counter.bytes >= o.sampleMb * 1e6,
      });
      const t1 = performance.now();
      const bpe = trainBpe(counter, { vocabSize: o.vocabSize, minFrequency: o.minFrequency, specialTokens: o.special });
      const t2 = performance.now();
      writeFileSync(o.out, JSON.stringify(bpe.toHuggingFace()));
      const summary = {
        out: o.out,
        vocab_size: bpe.vocabSize,
        merges: bpe.model.merges.length,
        sample_chars: counter.bytes,
        sample_docs: report.kept,
        malformed_skipped: report.malformed.count,
        read_seconds: Number(((t1 - t0) / 1000).toFixed(2)),
        train_seconds: Number(((t2 - t1) / 1000).toFixed(2)),
      };
      if (o.json) printJson(summary);
      else process.stdout.write(`${renderTable([summary])}\n`);
    });

  data
    .command('build')
    .description('build a versioned token dataset from a YAML recipe')
    .requiredOption('--recipe <file.yaml>', 'the recipe')
    .requiredOption('--out <dir>', 'dataset folder (written atomically)')
    .option('--force', 'replace an existing dataset at --out')
    .option('--parent <dir>', 'the dataset this one derives from (lineage)')
    .option('--workers <n>', 'worker threads (default: one per core; 0 = main thread)', int('--workers'))
    .option('--json', 'print the manifest as JSON')
    .action(async (o) => {
      const m = await buildDataset({
        recipe: o.recipe,
        out: o.out,
        force: o.force,
        parent: o.parent,
        workers: o.workers,
        log: o.json ? undefined : (s) => process.stderr.write(`${s}\n`),
      });
      if (o.json) {
        printJson(m);
        return;
      }
      process.stdout.write(`dataset ${m.version_id} at ${o.out}\n`);
      process.stdout.write(
        `${renderTable(
          Object.entries(m.sources).map(([name, s]) => {
            const r = s.report as {
              in: number;
              kept: number;
              dropped: Record<string, number>;
              malformed: { count: number };
            };
            return {
              source: name,
              in: r.in,
              kept: r.kept,
              dropped: Object.values(r.dropped).reduce((a, b) => a + b, 0),
              malformed: r.malformed.count,
              tokens: s.tokens,
            };
          }),
        )}\n`,
      );
      process.stdout.write(
        `${renderTable(Object.entries(m.stages).flatMap(([stage, s]) => s.mix.map((x) => ({ stage, ...x }))))}\n`,
      );
    });

  data
    .command('trace')
    .description('map token spans of a sample or a training step back to source files and records')
    .requiredOption('--dataset <dir>', 'dataset folder')
    .option('--stage <name>', 'stage (default: the first)')
    .option('--sample <i>', 'sample index (unshuffled stream order)', int('--sample'))
    .option('--step <n>', 'training step (loader order)', int('--step'))
    .option('--batch-size <b>', 'batch size for --step', int('--batch-size'))
    .requiredOption('--seq-len <l>', 'sequence length', int('--seq-len'))
    .option('--seed <n>', 'loader seed (default: the recipe seed)', int('--seed'))
    .option('--no-shuffle', 'loader without shuffling')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await trace({
        dataset: o.dataset,
        stage: o.stage,
        sample: o.sample,
        step: o.step,
        batchSize: o.batchSize,
        seqLen: o.seqLen,
        seed: o.seed,
        shuffle: o.shuffle,
      });
      if (o.json) {
        printJson(r);
        return;
      }
      process.stdout.write(
        `${renderTable(
          r.segments.map((s) => ({
            row: s.row,
            sample: s.sample,
            tokens: `${s.tokens[0]}-${s.tokens[1]}`,
            doc: s.doc,
            source: s.source,
            'file:line': `${s.file}:${s.line}`,
            bytes: `${s.text_bytes[0]}-${s.text_bytes[1]}`,
            ok: s.verified ? 'yes' : 'NO',
            text: s.text.slice(0, 60).replace(/\n/g, ' '),
          })),
        )}\n`,
      );
    });

  const bench = data.command('bench').description('data benchmarks');
  bench
    .command('pipeline')
    .description('generate a JSONL corpus and build it (clean + dedup + tokenize + shards); throughput and peak RSS')
    .option('--size-gb <n>', 'corpus size in GB', float('--size-gb'), 0.5)
    .option('--dir <dir>', 'work folder (default: a temp folder)')
    .option('--keep', 'keep the corpus and dataset')
    .option('--workers <n>', 'worker threads (default: one per core; 0 = main thread)', int('--workers'))
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await benchPipeline({
        sizeGb: o.sizeGb,
        dir: o.dir,
        workers: o.workers,
        keep: o.keep,
        log: (s) => process.stderr.write(`${s}\n`),
      });
      if (o.json) printJson(r);
      else
        process.stdout.write(
          `${renderTable([Object.fromEntries(Object.entries(r).filter(([, v]) => typeof v !== 'object'))])}\n`,
        );
    });
  bench
    .command('loader')
    .description('packed batches per second from a synthetic dataset (with and without the prefetch worker)')
    .option('--tokens <n>', 'dataset tokens', int('--tokens'), 64 * 2 ** 20)
    .option('--seq-len <l>', 'sequence length', int('--seq-len'), 4096)
    .option('--batch-size <b>', 'batch size', int('--batch-size'), 8)
    .option('--seconds <s>', 'seconds per measurement', float('--seconds'), 3)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await benchLoader({ tokens: o.tokens, seqLen: o.seqLen, batchSize: o.batchSize, seconds: o.seconds });
      if (o.json) printJson(r);
      else process.stdout.write(`${renderTable(r.results as Record<string, unknown>[])}\n`);
    });
}
