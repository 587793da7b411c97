/**
 * Record writers for stage outputs: JSONL directly (buffered), Parquet through DuckDB's COPY from a temporary
 * JSONL (streamed by DuckDB, so bounded memory). Both write to a temporary name and rename at the end, so a
 * crash never leaves a complete-looking output.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { duckdb, sqlString } from './read.js';

export class BufferedWriter {
  private fd: number;
  private parts: string[] = [];
  private pending = 0;
  bytes = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }
  write(s: string): void {
    this.parts.push(s);
    this.pending += s.length;
    if (this.pending > 1 << 22) this.flush();
  }
  flush(): void {
    if (!this.parts.length) return;
    const b = Buffer.from(this.parts.join(''), 'utf8');
    writeSync(this.fd, b);
    this.bytes += b.length;
    this.parts = [];
    this.pending = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

export class RecordWriter {
  private w: BufferedWriter;
  private tmp: string;
  readonly parquet: boolean;
  count = 0;
  constructor(readonly path: string) {
    this.parquet = /\.parquet$/i.test(path);
    if (!this.parquet && !/\.(jsonl|ndjson|json)$/i.test(path)) {
      throw new Error(`--out '${path}': expected a .jsonl or .parquet file name`);
    }
    this.tmp = tempSibling(path) + (this.parquet ? '.jsonl' : '');
    this.w = new BufferedWriter(this.tmp);
  }
  write(value: Record<string, unknown>): void {
    this.w.write(`${JSON.stringify(value)}\n`);
    this.count++;
  }
  async close(): Promise<void> {
    this.w.close();
    if (!this.parquet) {
      renameSync(this.tmp, this.path);
      return;
    }
    const out = tempSibling(this.path);
    try {
      const con = await duckdb();
      if (this.count === 0) {
        await con.run(`COPY (SELECT NULL::VARCHAR AS text WHERE false) TO ${sqlString(out)} (FORMAT parquet)`);
      } else {
        await con.run(
          `COPY (SELECT * FROM read_json(${sqlString(this.tmp)}, format='newline_delimited', sample_size=-1)) TO ${sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`,
        );
      }
      renameSync(out, this.path);
    } finally {
      rmSync(this.tmp, { force: true });
      rmSync(out, { force: true });
    }
  }
}
