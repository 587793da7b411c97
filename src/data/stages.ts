/**
 * The stand-alone stage commands: clean, dedup, stats. Each streams its inputs once and writes a report
 * (in, kept, dropped by reason, malformed with file:line examples) whose totals always add up.
 */
import { writeFileSync } from 'node:fs';
import { type CleanConfig, DEFAULT_CLEAN } from './clean.js';
import { DEFAULT_DEDUP, type DedupConfig, Deduper } from './dedup.js';
import { defaultWorkers, runStages, textSource } from './pipeline.js';
import { byteProgress } from './progress.js';
import { listInputs } from './read.js';
import { Report } from './report.js';
import { BufferedWriter, RecordWriter } from './write.js';
import type { Tokenizer } from '../io/tokenizer/types.js';

export interface StageCommon {
  inputs: string[];
  out?: string;
  textField?: string;
  report?: string;
  /** Worker threads for the per-record work (default: one per core; 0 = this thread). */
  workers?: number;
}

function inputsOf(o: StageCommon) {
  const { files, unsupported } = listInputs(o.inputs);
  if (!files.length) throw new Error(`--in ${o.inputs.join(', ')}: no .jsonl/.parquet/.csv/.txt inputs found`);
  return { files, unsupported };
}

function finish(report: Report, o: StageCommon): Report {
  report.check();
  if (o.report) writeFileSync(o.report, `${JSON.stringify(report.toJSON(), null, 2)}\n`);
  return report;
}

export async function cleanStage(o: StageCommon & { clean?: CleanConfig }): Promise<Report> {
  const { files, unsupported } = inputsOf(o);
  const report = new Report('clean');
  report.unsupported_files = unsupported;
  const field = o.textField ?? 'text';
  const w = o.out ? new RecordWriter(o.out) : null;
  const progress = byteProgress(
    'clean',
    files.reduce((a, f) => a + f.bytes, 0),
  );
  await runStages({
    files,
    source: textSource('input', field),
    clean: o.clean ?? DEFAULT_CLEAN,
    deduper: null,
    report,
    progress,
    workers: o.workers ?? defaultWorkers(),
    onKept: (d) => w?.write({ ...d.value, [field]: d.docs[0].body }),
  });
  progress.stop();
  await w?.close();
  return finish(report, o);
}

export async function dedupStage(
  o: StageCommon & { dedup?: Partial<DedupConfig>; clusters?: string },
): Promise<Report> {
  const { files, unsupported } = inputsOf(o);
  const report = new Report('dedup');
  report.unsupported_files = unsupported;
  const cfg = { ...DEFAULT_DEDUP, ...o.dedup };
  const deduper = new Deduper(cfg);
  const w = o.out ? new RecordWriter(o.out) : null;
  const cw = o.clusters ? new BufferedWriter(o.clusters) : null;
  const progress = byteProgress(
    'dedup',
    files.reduce((a, f) => a + f.bytes, 0),
  );
  await runStages({
    files,
    source: textSource('input', o.textField ?? 'text'),
    clean: null,
    deduper,
    report,
    progress,
    workers: o.workers ?? defaultWorkers(),
    onKept: (d) => w?.write(d.value),
    onDuplicate: (d) =>
      cw?.write(
        `${JSON.stringify({ reason: d.reason, jaccard: Number(d.jaccard.toFixed(4)), duplicate: { file: d.file, line: d.line }, representative: { file: d.repFile, line: d.repLine, id: d.of } })}\n`,
      ),
  });
  progress.stop();
  await w?.close();
  cw?.close();
  report.extra.dedup = { ...cfg, index_bytes: deduper.memoryBytes };
  return finish(report, o);
}

/** Counts and length distribution (chars, words, optionally tokens); keeps everything that parses. */
export async function statsStage(o: StageCommon & { tokenizer?: Tokenizer }): Promise<Report> {
  const { files, unsupported } = inputsOf(o);
  const report = new Report('stats');
  report.unsupported_files = unsupported;
  const lens: number[] = [];
  let words = 0;
  let tokens = 0;
  let nonAscii = 0;
  const progress = byteProgress(
    'stats',
    files.reduce((a, f) => a + f.bytes, 0),
  );
  await runStages({
    files,
    source: textSource('input', o.textField ?? 'text'),
    clean: null,
    deduper: null,
    report,
    progress,
    onKept: (d) => {
      const t = d.docs[0].body;
      if (lens.length < 1_000_000) lens.push(t.length);
      words += t.split(/\s+/).filter(Boolean).length;
      if (/[\u0080-\uffff]/.test(t)) nonAscii++;
      if (o.tokenizer) tokens += o.tokenizer.encode(t).length;
    },
  });
  progress.stop();
  lens.sort((a, b) => a - b);
  const q = (p: number) => (lens.length ? lens[Math.min(lens.length - 1, Math.floor(p * lens.length))] : 0);
  report.extra.stats = {
    docs: report.kept,
    chars: report.chars_kept,
    words,
    mean_chars: report.kept ? report.chars_kept / report.kept : 0,
    chars_p50: q(0.5),
    chars_p90: q(0.9),
    chars_p99: q(0.99),
    chars_max: lens.length ? lens[lens.length - 1] : 0,
    docs_with_non_ascii: nonAscii,
  };
  if (o.tokenizer) report.tokens = tokens;
  return finish(report, o);
}
