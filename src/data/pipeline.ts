/**
 * The streaming core every data command shares: read -> render text -> clean -> dedup -> hand kept
 * documents to a sink. One pass, bounded memory (dedup keeps signatures, never texts).
 */
import { cpus } from 'node:os';
import { ByteLevelBpe } from '../io/tokenizer/bpe.js';
import { loadTokenizer } from '../io/tokenizer/index.js';
import type { Tokenizer } from '../io/tokenizer/types.js';
import { type CleanConfig, emptyPiiCounts, normalizeText, type PiiCounts, qualityCheck, scrubPii } from './clean.js';
import { type DedupConfig, Deduper, type DupResult, type Prepared } from './dedup.js';
import type { Progress } from './progress.js';
import { extractText, type InputFile, readFile, type Unit } from './read.js';
import type { Report } from './report.js';
import { WorkerPool } from './workers.js';

export type SourceKind = 'text' | 'sft' | 'preference';

export interface SourceSpec {
  name: string;
  kind: SourceKind;
  text_field: string;
  /** text kind: optional template over record fields instead of text_field. */
  template?: string;
  /** sft/preference templates. */
  prompt: string;
  response: string;
  chosen: string;
  rejected: string;
  /** Apply the quality rules (normalisation and PII always apply when cleaning). */
  quality: boolean;
}

export function textSource(name: string, textField = 'text'): SourceSpec {
  return {
    name,
    kind: 'text',
    text_field: textField,
    prompt: '{prompt}',
    response: '{response}',
    chosen: '{chosen}',
    rejected: '{rejected}',
    quality: true,
  };
}

/** One training document: `prompt` (masked in SFT) followed by `body`. role 0 text/sft, 1 chosen, 2 rejected. */
export interface RenderedDoc {
  prompt: string;
  body: string;
  role: number;
  /** Set instead of the texts when they were not sent back (RunOptions.wantText false). */
  chars?: number;
}

export type Rendered = { malformed: string } | { drop: string } | { docs: RenderedDoc[]; key: string };

/** Record -> cleaned documents. Pure in (value, spec, clean); `trace` calls it again to re-derive tokens. */
/** The raw text parts of a record (text: [text]; sft: [prompt, response]; preference: [prompt, chosen, rejected]). */
export function extractParts(value: Record<string, unknown>, src: SourceSpec): string[] | { malformed: string } {
  const tpls =
    src.kind === 'text'
      ? [src.template ?? null]
      : src.kind === 'sft'
        ? [src.prompt, src.response]
        : [src.prompt, src.chosen, src.rejected];
  const parts: string[] = [];
  for (const tpl of tpls) {
    const t = extractText(value, tpl === null ? { text_field: src.text_field } : { template: tpl });
    if (typeof t !== 'string') return { malformed: t.reason };
    parts.push(t);
  }
  return parts;
}

/** Cleans the parts into documents, or names the rule that drops the record. */
export function renderParts(parts: string[], src: SourceSpec, clean: CleanConfig | null, pii: PiiCounts): Rendered {
  const prep = (s: string) => (clean ? scrubPii(normalizeText(s, clean.normalize), clean.pii, pii) : s);
  if (src.kind === 'text') {
    const body = prep(parts[0]);
    if (!body) return { drop: 'empty' };
    if (clean && src.quality) {
      const q = qualityCheck(body, clean.quality);
      if (q) return { drop: q };
    }
    return { docs: [{ prompt: '', body, role: 0 }], key: body };
  }
  const docs: RenderedDoc[] = [];
  const prompt = prep(parts[0]);
  for (let i = 1; i < parts.length; i++) {
    const body = prep(parts[i]);
    if (!body) return { drop: 'empty' };
    if (clean && src.quality) {
      const q = qualityCheck(`${prompt}\n${body}`, clean.quality);
      if (q) return { drop: q };
    }
    docs.push({ prompt: prompt ? `${prompt}\n` : '', body, role: src.kind === 'sft' ? 0 : i });
  }
  return { docs, key: docs.map((d) => d.prompt + d.body).join('\n') };
}

/** Record -> cleaned documents. Pure in (value, spec, clean); `trace` calls it again to re-derive tokens. */
export function renderRecord(
  value: Record<string, unknown>,
  src: SourceSpec,
  clean: CleanConfig | null,
  pii: PiiCounts,
): Rendered {
  const parts = extractParts(value, src);
  return Array.isArray(parts) ? renderParts(parts, src, clean, pii) : parts;
}

/** Provenance of kept documents by dedup id (for cluster records): two typed arrays, no strings. */
export class RefTable {
  file = new Int32Array(1024);
  line = new Float64Array(1024);
  n = 0;
  push(file: number, line: number): void {
    if (this.n === this.file.length) {
      const f = new Int32Array(this.n * 2);
      f.set(this.file);
      this.file = f;
      const l = new Float64Array(this.n * 2);
      l.set(this.line);
      this.line = l;
    }
    this.file[this.n] = file;
    this.line[this.n++] = line;
  }
}

/** Token ids of a kept record's documents, concatenated (EOS included when configured). */
export interface DocTokens {
  ids: Uint32Array;
  lens: number[];
  prompts: number[];
}

export interface KeptDoc {
  value: Record<string, unknown>;
  docs: RenderedDoc[];
  file: InputFile;
  fileIdx: number;
  line: number;
  offset: number;
  tokens?: DocTokens;
}

export interface DuplicateInfo extends DupResult {
  file: string;
  line: number;
  repFile: string;
  repLine: number;
}

/** Tokenization inside the per-record work (so it runs in the worker threads too). */
export interface TokenizeSpec {
  /** tokenizer.json / .tiktoken path (workers load it themselves). */
  path: string;
  eosId: number | null;
}

/** Everything the pure per-record work needs; plain data, so it can be posted to workers. */
export interface WorkSpec {
  source: SourceSpec;
  clean: CleanConfig | null;
  dedup: DedupConfig | null;
  tokenize: TokenizeSpec | null;
  /** Return cleaned texts (stage outputs); otherwise documents come back with lengths only. */
  wantText: boolean;
}

export type RecordResult =
  | { malformed: string }
  | { drop: string }
  | { docs: RenderedDoc[]; prep: Prepared | null; tokens: DocTokens | null };

export interface BatchResult {
  results: RecordResult[];
  pii: PiiCounts;
}

/** The per-record work bound to its tokenizer and a private deduper (used for `prepare` only). */
export class RecordWork {
  private deduper: Deduper | null;
  private encodeInto: ((t: string, out: number[]) => void) | null = null;
  private ids: number[] = [];

  private constructor(readonly spec: WorkSpec) {
    this.deduper = spec.dedup ? new Deduper(spec.dedup) : null;
  }

  static async create(spec: WorkSpec, tokenizer?: Tokenizer): Promise<RecordWork> {
    const w = new RecordWork(spec);
    if (spec.tokenize) {
      const tok = tokenizer ?? (await loadTokenizer(spec.tokenize.path));
      w.encodeInto =
        tok instanceof ByteLevelBpe
          ? (t, out) => tok.encodeInto(t, out)
          : (t, out) => {
              for (const id of tok.encode(t)) out.push(id);
            };
    }
    return w;
  }

  run(items: string[][]): BatchResult {
    const pii = emptyPiiCounts();
    const results: RecordResult[] = [];
    for (const parts of items) {
      const r = renderParts(parts, this.spec.source, this.spec.clean, pii);
      if (!('docs' in r)) {
        results.push(r);
        continue;
      }
      const prep = this.deduper ? this.deduper.prepare(r.key) : null;
      let tokens: DocTokens | null = null;
      if (this.encodeInto) {
        const ids = this.ids;
        ids.length = 0;
        const lens: number[] = [];
        const prompts: number[] = [];
        const eos = this.spec.tokenize!.eosId;
        for (const d of r.docs) {
          const start = ids.length;
          if (d.prompt) this.encodeInto(d.prompt, ids);
          prompts.push(ids.length - start);
          this.encodeInto(d.body, ids);
          if (eos !== null) ids.push(eos);
          lens.push(ids.length - start);
        }
        tokens = { ids: Uint32Array.from(ids), lens, prompts };
      }
      // Without wantText only lengths go back (the build needs tokens, not texts, across the thread boundary).
      const docs = this.spec.wantText
        ? r.docs
        : r.docs.map((d) => ({ prompt: '', body: '', role: d.role, chars: d.prompt.length + d.body.length }));
      results.push({ docs, prep, tokens });
    }
    return { results, pii };
  }
}

export interface RunOptions {
  files: InputFile[];
  source: SourceSpec;
  /** null: no cleaning (dedup and stats commands see the raw text). */
  clean: CleanConfig | null;
  deduper: Deduper | null;
  report: Report;
  onKept?: (doc: KeptDoc) => void | Promise<void>;
  onDuplicate?: (d: DuplicateInfo) => void;
  progress?: Progress;
  /** Index of files[0] in a global file table (shared across sources); refs for clusters. */
  fileBase?: number;
  refs?: RefTable;
  allFiles?: InputFile[];
  /** Checked after each kept record: stop reading when it returns true (tokenizer samples). */
  until?: () => boolean;
  /** Tokenize kept documents as part of the per-record work (KeptDoc.tokens). */
  tokenize?: TokenizeSpec & { tokenizer?: Tokenizer };
  /**
   * Worker threads for the per-record work (cleaning, hashing/MinHash, tokenizing); 0 runs it on this
   * thread. Decisions (dedup, accounting, output) stay on this thread, in input order, so results do not
   * depend on the worker count.
   */
  workers?: number;
  /** KeptDoc.docs carry the cleaned texts (default true); false sends only lengths back from workers. */
  wantText?: boolean;
}

/** Default worker count: one per core (the reading/deciding thread is mostly idle, waiting on them). */
export function defaultWorkers(): number {
  return Math.max(1, cpus().length);
}

/** Runs the stages over files, filling report (per-file stats, sha256s) and calling the sinks. */
export async function runStages(o: RunOptions): Promise<void> {
  const { report } = o;
  const t0 = performance.now();
  const refs = o.refs ?? new RefTable();
  const all = o.allFiles ?? o.files;
  const base = o.fileBase ?? 0;
  const spec: WorkSpec = {
    source: o.source,
    clean: o.clean,
    dedup: o.deduper ? o.deduper.cfg : null,
    tokenize: o.tokenize ? { path: o.tokenize.path, eosId: o.tokenize.eosId } : null,
    wantText: o.wantText ?? true,
  };
  const nWorkers = o.until ? 0 : (o.workers ?? 0);
  const pool = nWorkers > 0 ? new WorkerPool<string[][], BatchResult>('stageWorker', nWorkers, spec) : null;
  const local = pool ? null : await RecordWork.create(spec, o.tokenize?.tokenizer);
  const exec = (items: string[][]): Promise<BatchResult> =>
    pool ? pool.run(items) : Promise.resolve(local!.run(items));
  let stop = false;
  try {
    for (let fi = 0; fi < o.files.length && !stop; fi++) {
      const f = o.files[fi];
      const fstat = {
        path: f.path,
        bytes: f.bytes,
        in: 0,
        kept: 0,
        malformed: 0,
        sha256: undefined as string | undefined,
      };
      const { units, done } = readFile(f, { onBytes: (n) => o.progress?.add(n) });
      const inflight: { batch: Unit[]; result: Promise<BatchResult> }[] = [];
      const consume = async (batch: Unit[], br: BatchResult) => {
        for (const k of Object.keys(br.pii) as (keyof PiiCounts)[]) report.pii[k] += br.pii[k];
        let ri = 0;
        for (const u of batch) {
          if (stop) {
            return;
          }
          report.in++;
          fstat.in++;
          if (u.kind === 'malformed') {
            report.bad(f.path, u.line, u.reason);
            fstat.malformed++;
            continue;
          }
          const r = br.results[ri++];
          if ('malformed' in r) {
            report.bad(f.path, u.line, r.malformed);
            fstat.malformed++;
            continue;
          }
          if ('drop' in r) {
            report.drop(r.drop);
            continue;
          }
          if (o.deduper && r.prep) {
            const d = o.deduper.decide(r.prep);
            if (d) {
              report.drop(d.reason);
              if (o.onDuplicate) {
                const rf = refs.file[d.of];
                o.onDuplicate({
                  ...d,
                  file: f.path,
                  line: u.line,
                  repFile: all[rf]?.path ?? `#${rf}`,
                  repLine: refs.line[d.of],
                });
              }
              continue;
            }
            refs.push(base + fi, u.line);
          }
          report.kept++;
          fstat.kept++;
          for (const d of r.docs) report.chars_kept += d.chars ?? d.prompt.length + d.body.length;
          if (o.onKept) {
            const p = o.onKept({
              value: u.value,
              docs: r.docs,
              file: f,
              fileIdx: base + fi,
              line: u.line,
              offset: u.offset,
              tokens: r.tokens ?? undefined,
            });
            if (p) await p;
          }
          if (o.until?.()) {
            stop = true;
            return;
          }
        }
      };
      for await (const batch of units) {
        // Field extraction happens here so only the text parts cross to the workers.
        const items: string[][] = [];
        for (let i = 0; i < batch.length; i++) {
          const u = batch[i];
          if (u.kind !== 'record') continue;
          const parts = extractParts(u.value, o.source);
          if (Array.isArray(parts)) items.push(parts);
          else batch[i] = { kind: 'malformed', line: u.line, reason: parts.malformed };
        }
        inflight.push({ batch, result: exec(items) });
        while (inflight.length > 2 * nWorkers) {
          const x = inflight.shift()!;
          await consume(x.batch, await x.result);
          if (stop) break;
        }
        if (stop) {
          await units.return(undefined);
          break;
        }
      }
      while (inflight.length && !stop) {
        const x = inflight.shift()!;
        await consume(x.batch, await x.result);
      }
      if (!stop) {
        const r = await done;
        fstat.sha256 = r.sha256;
      }
      report.bytes_in += f.bytes;
      report.files.push(fstat);
    }
  } finally {
    await pool?.close();
  }
  report.seconds += (performance.now() - t0) / 1000;
}
