/**
 * Stage accounting. Invariant, checked by `check()`: in = kept + sum(dropped) + malformed.count.
 * A unit is a record (JSONL line, Parquet/CSV row, text file), or a whole file when it cannot be read at all.
 */
import { renderTable as sharedTable } from '../cli/shared.js';

/** Counts stay exact in tables (the shared table rounds numbers to 4 digits). */
export function renderTable(rows: readonly Record<string, unknown>[]): string {
  return sharedTable(
    rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number.isInteger(v) ? String(v) : v]))),
  );
}
import { emptyPiiCounts, type PiiCounts } from './clean.js';

export interface MalformedExample {
  file: string;
  line: number;
  reason: string;
}

export interface FileStats {
  path: string;
  sha256?: string;
  bytes: number;
  in: number;
  kept: number;
  malformed: number;
}

export class Report {
  stage: string;
  in = 0;
  kept = 0;
  dropped: Record<string, number> = {};
  malformed = { count: 0, reasons: {} as Record<string, number>, examples: [] as MalformedExample[] };
  pii: PiiCounts = emptyPiiCounts();
  files: FileStats[] = [];
  unsupported_files: string[] = [];
  bytes_in = 0;
  chars_kept = 0;
  tokens?: number;
  seconds = 0;
  extra: Record<string, unknown> = {};
  private maxExamples: number;

  constructor(stage: string, maxExamples = 50) {
    this.stage = stage;
    this.maxExamples = maxExamples;
  }

  drop(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  bad(file: string, line: number, reason: string): void {
    this.malformed.count++;
    const key = reason.replace(/:.*$/, '');
    this.malformed.reasons[key] = (this.malformed.reasons[key] ?? 0) + 1;
    if (this.malformed.examples.length < this.maxExamples) this.malformed.examples.push({ file, line, reason });
  }

  droppedTotal(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }

  check(): void {
    const sum = this.kept + this.droppedTotal() + this.malformed.count;
    if (sum !== this.in) {
      throw new Error(
        `${this.stage} report: in (${this.in}) != kept (${this.kept}) + dropped + malformed (${sum - this.kept})`,
      );
    }
  }

  toJSON(): Record<string, unknown> {
    return {
      stage: this.stage,
      in: this.in,
      kept: this.kept,
      dropped: this.dropped,
      malformed: this.malformed,
      pii: this.pii,
      bytes_in: this.bytes_in,
      chars_kept: this.chars_kept,
      ...(this.tokens !== undefined ? { tokens: this.tokens } : {}),
      seconds: Number(this.seconds.toFixed(3)),
      mb_per_s: this.seconds ? Number((this.bytes_in / 1e6 / this.seconds).toFixed(2)) : null,
      files: this.files,
      unsupported_files: this.unsupported_files,
      ...this.extra,
    };
  }

  /** Readable tables: totals, drop reasons, malformed examples. */
  render(): string {
    const out: string[] = [];
    const total = {
      stage: this.stage,
      in: this.in,
      kept: this.kept,
      dropped: this.droppedTotal(),
      malformed: this.malformed.count,
    };
    out.push(
      renderTable([
        {
          ...total,
          'MB in': this.bytes_in / 1e6,
          seconds: this.seconds,
          ...(this.tokens !== undefined ? { tokens: this.tokens } : {}),
        },
      ]),
    );
    const reasons = Object.entries(this.dropped).sort((a, b) => b[1] - a[1]);
    if (reasons.length)
      out.push(
        renderTable(
          reasons.map(([reason, count]) => ({
            'dropped because': reason,
            count,
            share: this.in ? count / this.in : 0,
          })),
        ),
      );
    const pii = Object.entries(this.pii).filter(([, n]) => n > 0);
    if (pii.length) out.push(renderTable(pii.map(([kind, count]) => ({ 'pii scrubbed': kind, count }))));
    if (this.malformed.count) {
      out.push(
        renderTable(
          this.malformed.examples.slice(0, 10).map((e) => ({ malformed: `${e.file}:${e.line}`, reason: e.reason })),
        ),
      );
    }
    if (this.unsupported_files.length)
      out.push(`unsupported files skipped (not counted as records): ${this.unsupported_files.join(', ')}`);
    return out.join('\n');
  }
}
