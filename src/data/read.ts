/**
 * Input readers. Every input unit becomes either a record (with file:line provenance) or a counted
 * malformed entry, never nothing. Batches of records are yielded so per-record async overhead stays small.
 *
 * Plain and gzip JSONL (and plain text) are streamed here line by line: that gives exact file:line and byte
 * offsets (trace seeks to them), UTF-8 validation per line, and broken-JSON accounting per line, which
 * DuckDB's read_json cannot report (it fails or skips a whole file). Parquet, CSV and zstd-compressed inputs
 * go through DuckDB (`@duckdb/node-api`), streamed chunk by chunk so memory stays bounded. Node 20's zlib has
 * no zstd, so `.zst` JSONL is read by DuckDB's CSV reader as one VARCHAR column in latin-1 (bytes preserved)
 * and each line is validated and parsed here; DuckDB skips blank lines there, so `.zst` line numbers count
 * non-blank lines.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { join, resolve } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { DuckDBConnection } from '@duckdb/node-api';

export type Format = 'jsonl' | 'parquet' | 'csv' | 'txt';
export type Compression = 'none' | 'gzip' | 'zstd';

export interface InputFile {
  path: string;
  format: Format;
  compression: Compression;
  bytes: number;
}

export interface RecordUnit {
  kind: 'record';
  value: Record<string, unknown>;
  /** 1-based line (JSONL, text) or row (Parquet, CSV). */
  line: number;
  /** Byte offset of the line in the (decompressed) file; -1 where the reader cannot know it. */
  offset: number;
}

export interface MalformedUnit {
  kind: 'malformed';
  line: number;
  reason: string;
}

export type Unit = RecordUnit | MalformedUnit;

export interface FileResult {
  sha256: string;
  bytesRead: number;
}

const EXT: [RegExp, Format][] = [
  [/\.(jsonl|ndjson|json)$/i, 'jsonl'],
  [/\.parquet$/i, 'parquet'],
  [/\.(csv|tsv)$/i, 'csv'],
  [/\.(txt|text|md)$/i, 'txt'],
];

export function detectFile(path: string): { format: Format; compression: Compression } | null {
  let p = path;
  let compression: Compression = 'none';
  if (/\.gz$/i.test(p)) {
    compression = 'gzip';
    p = p.slice(0, -3);
  } else if (/\.zstd?$/i.test(p)) {
    compression = 'zstd';
    p = p.replace(/\.zstd?$/i, '');
  }
  for (const [re, format] of EXT) if (re.test(p)) return { format, compression };
  return null;
}

/** Expands files and folders (recursively, sorted) into input files; unsupported files are returned apart. */
export function listInputs(paths: readonly string[]): { files: InputFile[]; unsupported: string[] } {
  const files: InputFile[] = [];
  const unsupported: string[] = [];
  const visit = (p: string) => {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p);
    } catch {
      throw new Error(`input '${p}': no such file or folder`);
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        if (name.startsWith('.')) continue;
        visit(join(p, name));
      }
      return;
    }
    const d = detectFile(p);
    if (!d) unsupported.push(p);
    else files.push({ path: resolve(p), ...d, bytes: st.size });
  };
  for (const p of paths) visit(p);
  return { files, unsupported };
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

let duck: Promise<DuckDBConnection> | null = null;

/** One shared in-process DuckDB connection (threads capped so the pipeline keeps a core). */
export function duckdb(): Promise<DuckDBConnection> {
  if (!duck) {
    duck = (async () => {
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const inst = await DuckDBInstance.create(':memory:', { threads: '2', memory_limit: '1GB' });
      return inst.connect();
    })();
  }
  return duck;
}

export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function parseJsonLine(line: string, lineNo: number, offset: number): Unit {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return { kind: 'malformed', line: lineNo, reason: `invalid JSON: ${(e as Error).message.slice(0, 80)}` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    return {
      kind: 'malformed',
      line: lineNo,
      reason: `line is ${Array.isArray(v) ? 'an array' : typeof v}, expected a JSON object`,
    };
  }
  return { kind: 'record', value: v as Record<string, unknown>, line: lineNo, offset };
}

/** Streams raw bytes of a plain or gzip file, hashing the on-disk bytes as they pass. */
async function* byteChunks(f: InputFile, hash: ReturnType<typeof createHash>, onRead: (n: number) => void) {
  const raw = createReadStream(f.path, { highWaterMark: 1 << 22 });
  if (f.compression === 'none') {
    for await (const c of raw) {
      hash.update(c as Buffer);
      onRead((c as Buffer).length);
      yield c as Buffer;
    }
    return;
  }
  raw.on('data', (c) => {
    hash.update(c as Buffer);
    onRead((c as Buffer).length);
  });
  const gz = raw.pipe(createGunzip());
  raw.on('error', (e) => gz.destroy(e));
  for await (const c of gz) yield c as Buffer;
}

/** Yields lines as (buffer slice, 1-based line, byte offset); the final line needs no newline. */
async function* lines(chunks: AsyncIterable<Buffer>): AsyncGenerator<[Buffer, number, number][]> {
  let carry: Buffer | null = null;
  let lineNo = 0;
  let offset = 0;
  for await (const chunk of chunks) {
    const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const out: [Buffer, number, number][] = [];
    let s = 0;
    for (;;) {
      const e = buf.indexOf(10, s);
      if (e < 0) break;
      let end = e;
      if (end > s && buf[end - 1] === 13) end--;
      out.push([buf.subarray(s, end), ++lineNo, offset + s]);
      s = e + 1;
    }
    offset += s;
    carry = s < buf.length ? Buffer.from(buf.subarray(s)) : null;
    if (out.length) yield out;
  }
  if (carry?.length) yield [[carry, ++lineNo, offset]];
}

export interface ReadOptions {
  /** Called with on-disk bytes consumed (progress bars). */
  onBytes?: (n: number) => void;
  /** Records per yielded batch. */
  batch?: number;
}

/**
 * Reads one file as batches of units. Resolves `done` with the file's sha256 (of its on-disk bytes) when the
 * generator finishes. An empty file yields one malformed unit ('empty file') so it shows in reports.
 */
export function readFile(
  f: InputFile,
  opts: ReadOptions = {},
): { units: AsyncGenerator<Unit[]>; done: Promise<FileResult> } {
  let resolveDone!: (r: FileResult) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<FileResult>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => {});
  const onBytes = opts.onBytes ?? (() => {});
  const batch = opts.batch ?? 512;
  async function* gen(): AsyncGenerator<Unit[]> {
    try {
      if (f.bytes === 0) {
        yield [{ kind: 'malformed', line: 0, reason: 'empty file' }];
        resolveDone({ sha256: createHash('sha256').digest('hex'), bytesRead: 0 });
        return;
      }
      if ((f.format === 'jsonl' || f.format === 'txt') && f.compression !== 'zstd') {
        const hash = createHash('sha256');
        let bytesRead = 0;
        const chunks = byteChunks(f, hash, (n) => {
          bytesRead += n;
          onBytes(n);
        });
        if (f.format === 'jsonl') {
          let any = false;
          try {
            for await (const ls of lines(chunks)) {
              const out: Unit[] = [];
              for (const [b, lineNo, off] of ls) {
                any = true;
                if (b.length === 0 || (b.length < 64 && b.toString('latin1').trim() === '')) {
                  out.push({ kind: 'malformed', line: lineNo, reason: 'blank line' });
                } else if (!isUtf8(b)) out.push({ kind: 'malformed', line: lineNo, reason: 'invalid UTF-8' });
                else out.push(parseJsonLine(b.toString('utf8'), lineNo, off));
              }
              yield out;
            }
          } catch (e) {
            yield [{ kind: 'malformed', line: 0, reason: `unreadable: ${(e as Error).message}` }];
          }
          if (!any) yield [{ kind: 'malformed', line: 0, reason: 'empty file' }];
        } else {
          const parts: Buffer[] = [];
          try {
            for await (const c of chunks) parts.push(c);
            const b = Buffer.concat(parts);
            if (!isUtf8(b)) yield [{ kind: 'malformed', line: 1, reason: 'invalid UTF-8' }];
            else yield [{ kind: 'record', value: { text: b.toString('utf8') }, line: 1, offset: 0 }];
          } catch (e) {
            yield [{ kind: 'malformed', line: 0, reason: `unreadable: ${(e as Error).message}` }];
          }
        }
        resolveDone({ sha256: hash.digest('hex'), bytesRead });
        return;
      }
      // DuckDB paths: hash separately (one extra read of the compressed/columnar bytes).
      const sha = sha256File(f.path);
      sha.catch(() => {});
      yield* duckUnits(f, batch, onBytes);
      resolveDone({ sha256: await sha, bytesRead: f.bytes });
    } catch (e) {
      rejectDone(e);
      throw e;
    }
  }
  return { units: gen(), done };
}

async function* duckUnits(f: InputFile, batch: number, onBytes: (n: number) => void): AsyncGenerator<Unit[]> {
  const con = await duckdb();
  const { JsonDuckDBValueConverter } = await import('@duckdb/node-api');
  const p = sqlString(f.path);
  let sql: string;
  const lineMode = f.format === 'jsonl' || f.format === 'txt';
  if (lineMode) {
    sql = `SELECT line FROM read_csv(${p}, columns={'line':'VARCHAR'}, delim=chr(1), quote='', escape='', header=false,
      auto_detect=false, strict_mode=false, new_line='\\n', nullstr=chr(2), encoding='latin-1', compression='zstd')`;
  } else if (f.format === 'parquet') sql = `SELECT * FROM read_parquet(${p})`;
  else sql = `SELECT * FROM read_csv(${p}, header=true, all_varchar=true, compression='auto')`;
  let row = 0;
  const txt: string[] = [];
  let txtBad = false;
  let failed = false;
  try {
    const res = await con.stream(sql);
    const names = res.columnNames();
    for (;;) {
      const chunk = await res.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const out: Unit[] = [];
      if (lineMode) {
        const col = chunk.getColumns()[0] as (string | null)[];
        for (const s of col) {
          row++;
          const b = Buffer.from(s ?? '', 'latin1');
          if (f.format === 'txt') {
            if (!isUtf8(b)) txtBad = true;
            else txt.push(b.toString('utf8'));
            continue;
          }
          if (!isUtf8(b)) out.push({ kind: 'malformed', line: row, reason: 'invalid UTF-8' });
          else out.push(parseJsonLine(b.toString('utf8'), row, -1));
        }
      } else {
        const rows = chunk.convertRows(JsonDuckDBValueConverter);
        for (const vals of rows) {
          const r: Record<string, unknown> = {};
          for (let c = 0; c < names.length; c++) r[names[c]] = vals[c];
          out.push({ kind: 'record', value: r, line: ++row + (f.format === 'csv' ? 1 : 0), offset: -1 });
        }
      }
      onBytes(0);
      for (let i = 0; i < out.length; i += batch) yield out.slice(i, i + batch);
    }
  } catch (e) {
    failed = true;
    const msg = (e as Error).message.split('\n')[0].slice(0, 200);
    yield [{ kind: 'malformed', line: row, reason: `unreadable ${f.format}${row ? ` after row ${row}` : ''}: ${msg}` }];
  }
  if (f.format === 'txt') {
    if (txtBad) yield [{ kind: 'malformed', line: 1, reason: 'invalid UTF-8' }];
    else if (txt.length) yield [{ kind: 'record', value: { text: txt.join('\n') }, line: 1, offset: 0 }];
  }
  if (row === 0 && !failed && f.format !== 'txt')
    yield [{ kind: 'malformed', line: 0, reason: 'empty file (no rows)' }];
  onBytes(f.bytes);
}

/** How a source's document text is taken from a record. */
export interface TextSpec {
  text_field?: string;
  /** `{field}` placeholders, e.g. "Question: {prompt}\nAnswer: {response}". */
  template?: string;
}

/** Returns the text, or a reason naming the field when it is missing or not a string. */
export function extractText(value: Record<string, unknown>, spec: TextSpec): string | { reason: string } {
  if (spec.template) {
    let bad: string | null = null;
    const t = spec.template.replace(/\{(\w+)\}/g, (_m, k: string) => {
      const v = value[k];
      if (typeof v !== 'string')
        bad ??=
          v === undefined
            ? `field '${k}' missing`
            : `field '${k}' is ${v === null ? 'null' : typeof v}, expected string`;
      return typeof v === 'string' ? v : '';
    });
    return bad ? { reason: bad } : t;
  }
  const k = spec.text_field ?? 'text';
  const v = value[k];
  if (typeof v === 'string') return v;
  return {
    reason:
      v === undefined ? `field '${k}' missing` : `field '${k}' is ${v === null ? 'null' : typeof v}, expected string`,
  };
}
