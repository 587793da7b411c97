/**
 * The streaming core every data command shares: read -> render text -> clean -> dedup -> hand kept
 * documents to a sink. One pass, bounded memory (dedup keeps signatures, never texts).
 */
import { type CleanConfig, normalizeText, qualityCheck, scrubPii } from './clean.js';
import type { Deduper, DupResult } from './dedup.js';
import type { Progress } from './progress.js';
import { extractText, type InputFile, readFile } from './read.js';
import type { Report } from './report.js';

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
}

export type Rendered = { malformed: string } | { drop: string } | { docs: RenderedDoc[]; key: string };

/** Record -> cleaned documents. Pure in (value, spec, clean); `trace` calls it again to re-derive tokens. */
export function renderRecord(
  value: Record<string, unknown>,
  src: SourceSpec,
  clean: CleanConfig | null,
  pii: Record<'email' | 'phone' | 'ip' | 'card', number>,
): Rendered {
  const part = (tpl: string): string | { reason: string } => extractText(value, { template: tpl });
  const prep = (s: string) => (clean ? scrubPii(normalizeText(s, clean.normalize), clean.pii, pii) : s);
  if (src.kind === 'text') {
    const t = extractText(value, src.template ? { template: src.template } : { text_field: src.text_field });
    if (typeof t !== 'string') return { malformed: t.reason };
    const body = prep(t);
    if (!body) return { drop: 'empty' };
    if (clean && src.quality) {
      const q = qualityCheck(body, clean.quality);
      if (q) return { drop: q };
    }
    return { docs: [{ prompt: '', body, role: 0 }], key: body };
  }
  const p = part(src.prompt);
  if (typeof p !== 'string') return { malformed: p.reason };
  const bodies = src.kind === 'sft' ? [part(src.response)] : [part(src.chosen), part(src.rejected)];
  const docs: RenderedDoc[] = [];
  const prompt = prep(p);
  for (let i = 0; i < bodies.length; i++) {
    const b = bodies[i];
    if (typeof b !== 'string') return { malformed: b.reason };
    const body = prep(b);
    if (!body) return { drop: 'empty' };
    if (clean && src.quality) {
      const q = qualityCheck(`${prompt}\n${body}`, clean.quality);
      if (q) return { drop: q };
    }
    docs.push({ prompt: prompt ? `${prompt}\n` : '', body, role: src.kind === 'sft' ? 0 : i + 1 });
  }
  return { docs, key: docs.map((d) => d.prompt + d.body).join('\n') };
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

export interface KeptDoc {
  value: Record<string, unknown>;
  docs: RenderedDoc[];
  file: InputFile;
  fileIdx: number;
  line: number;
  offset: number;
}

export interface DuplicateInfo extends DupResult {
  file: string;
  line: number;
  repFile: string;
  repLine: number;
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
}

/** Runs the stages over files, filling report (per-file stats, sha256s) and calling the sinks. */
export async function runStages(o: RunOptions): Promise<void> {
  const { report } = o;
  const t0 = performance.now();
  const refs = o.refs ?? new RefTable();
  const all = o.allFiles ?? o.files;
  const base = o.fileBase ?? 0;
  let stop = false;
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
    for await (const batch of units) {
      for (const u of batch) {
        report.in++;
        fstat.in++;
        if (u.kind === 'malformed') {
          report.bad(f.path, u.line, u.reason);
          fstat.malformed++;
          continue;
        }
        const r = renderRecord(u.value, o.source, o.clean, report.pii);
        if ('malformed' in r) {
          report.bad(f.path, u.line, r.malformed);
          fstat.malformed++;
          continue;
        }
        if ('drop' in r) {
          report.drop(r.drop);
          continue;
        }
        if (o.deduper) {
          const d = o.deduper.check(r.key);
          if (d) {
            report.drop(d.reason);
            if (o.onDuplicate) {
              const rf = refs.file[d.of];
              o.onDuplicate({
                ...d,
                file: f.path,
                line: u.line,
                repFile: all[rf - base]?.path ?? `#${rf}`,
                repLine: refs.line[d.of],
              });
            }
            continue;
          }
          refs.push(base + fi, u.line);
        }
        report.kept++;
        fstat.kept++;
        for (const d of r.docs) report.chars_kept += d.prompt.length + d.body.length;
        if (o.onKept) {
          const p = o.onKept({
            value: u.value,
            docs: r.docs,
            file: f,
            fileIdx: base + fi,
            line: u.line,
            offset: u.offset,
          });
          if (p) await p;
        }
        if (o.until?.()) {
          stop = true;
          break;
        }
      }
      if (stop) {
        await units.return(undefined);
        break;
      }
    }
    if (!stop) {
      const r = await done;
      fstat.sha256 = r.sha256;
    }
    report.bytes_in += f.bytes;
    report.files.push(fstat);
  }
  report.seconds += (performance.now() - t0) / 1000;
}
