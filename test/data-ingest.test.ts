import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckdb, listInputs, sqlString } from '../src/data/read.js';
import { cleanStage, statsStage } from '../src/data/stages.js';

const dir = mkdtempSync(join(tmpdir(), 'data-ingest-'));
afterAll(() => {
  if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

const good = (i: number) =>
  `Document number ${i} talks about rivers and mountains and the weather in spring, with enough words to pass the quality rules easily today.`;

beforeAll(async () => {
  const lines = [
    JSON.stringify({ text: good(1) }),
    '{"text": "unterminated',
    Buffer.concat([Buffer.from('{"text": "bad '), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    JSON.stringify({ body: 'no text field' }),
    JSON.stringify({ text: 42 }),
    JSON.stringify({ text: null }),
    '',
    '[1, 2]',
    JSON.stringify({ text: good(2) }),
  ];
  writeFileSync(
    join(dir, 'mixed.jsonl'),
    Buffer.concat(lines.map((l) => Buffer.concat([Buffer.from(l as never), Buffer.from('\n')]))),
  );
  writeFileSync(join(dir, 'empty.jsonl'), '');
  writeFileSync(join(dir, 'bad.parquet'), 'PAR1 this is not a parquet file');
  writeFileSync(join(dir, 'a.jsonl.gz'), gzipSync(`${JSON.stringify({ text: good(3) })}\n{oops\n`));
  const con = await duckdb();
  const p = (f: string) => sqlString(join(dir, f));
  await con.run(
    `COPY (SELECT * FROM (VALUES ('${good(4)}', 1), (NULL, 2), ('${good(5)}', 3)) t(text, id)) TO ${p('good.parquet')} (FORMAT parquet)`,
  );
  await con.run(`COPY (SELECT 'x' AS body FROM range(3)) TO ${p('notext.parquet')} (FORMAT parquet)`);
  await con.run(`COPY (SELECT 7 AS text FROM range(2)) TO ${p('inttext.parquet')} (FORMAT parquet)`);
  await con.run(
    `COPY (SELECT '{"text": "${good(6)}"}' AS text UNION ALL SELECT '{broken' ) TO ${p('z.jsonl.zst')} (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t', COMPRESSION zstd)`,
  );
  writeFileSync(join(dir, 'rows.csv'), `id,text\n1,"${good(7)}"\n2,"${good(8)}"\n`);
  mkdirSync(join(dir, 'texts'));
  writeFileSync(join(dir, 'texts', 'a.txt'), `${good(9)}\n\nSecond paragraph.`);
  writeFileSync(join(dir, 'texts', 'b.txt.gz'), gzipSync(good(10)));
  writeFileSync(join(dir, 'texts', 'c.bin'), 'binary');
});

describe('ingest', () => {
  it('counts every malformed unit with file:line and keeps everything else', async () => {
    const r = await statsStage({ inputs: [join(dir, 'mixed.jsonl')] });
    expect(r.in).toBe(9);
    expect(r.kept).toBe(2);
    expect(r.malformed.count).toBe(7);
    const byLine = Object.fromEntries(r.malformed.examples.map((e) => [e.line, e.reason]));
    expect(byLine[2]).toMatch(/invalid JSON/);
    expect(byLine[3]).toBe('invalid UTF-8');
    expect(byLine[4]).toBe("field 'text' missing");
    expect(byLine[5]).toBe("field 'text' is number, expected string");
    expect(byLine[6]).toBe("field 'text' is null, expected string");
    expect(byLine[7]).toBe('blank line');
    expect(byLine[8]).toMatch(/array/);
    expect(r.malformed.examples.every((e) => e.file.endsWith('mixed.jsonl'))).toBe(true);
  });

  it('empty files, unreadable Parquet, wrong column types: reported, the run finishes', async () => {
    const r = await statsStage({
      inputs: ['empty.jsonl', 'bad.parquet', 'good.parquet', 'notext.parquet', 'inttext.parquet'].map((f) =>
        join(dir, f),
      ),
    });
    r.check();
    if (process.env.KEEP) console.log(JSON.stringify(r.toJSON(), null, 1));
    expect(r.kept).toBe(2);
    const reasons = r.malformed.examples.map((e) => `${e.file.split('/').pop()}:${e.line} ${e.reason}`);
    expect(reasons).toContainEqual(expect.stringMatching(/^empty\.jsonl:0 empty file/));
    expect(reasons).toContainEqual(expect.stringMatching(/^bad\.parquet:0 unreadable parquet/));
    expect(reasons).toContainEqual("good.parquet:2 field 'text' is null, expected string");
    expect(reasons.filter((s) => s.startsWith('notext.parquet')).length).toBe(3);
    expect(reasons.filter((s) => s.startsWith('inttext.parquet') && s.includes('is number')).length).toBe(2);
    expect(r.in).toBe(1 + 1 + 3 + 3 + 2);
  });

  it('reads gzip and zstd JSONL, CSV, and folders of text files; lists unsupported files apart', async () => {
    const r = await statsStage({
      inputs: [join(dir, 'a.jsonl.gz'), join(dir, 'z.jsonl.zst'), join(dir, 'rows.csv'), join(dir, 'texts')],
    });
    r.check();
    if (process.env.KEEP) console.log(JSON.stringify(r.toJSON(), null, 1));
    expect(r.kept).toBe(1 + 1 + 2 + 2);
    expect(r.malformed.count).toBe(2);
    expect(r.unsupported_files.map((f) => f.split('/').pop())).toEqual(['c.bin']);
    const files = listInputs([join(dir, 'texts')]).files.map((f) => [f.format, f.compression]);
    expect(files).toEqual([
      ['txt', 'none'],
      ['txt', 'gzip'],
    ]);
    for (const f of r.files) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('clean stage writes Parquet and a report; in = kept + dropped + malformed', async () => {
    const out = join(dir, 'clean.parquet');
    const report = join(dir, 'clean.json');
    await cleanStage({ inputs: [join(dir, 'mixed.jsonl'), join(dir, 'good.parquet')], out, report });
    const j = JSON.parse(readFileSync(report, 'utf8'));
    const dropped = Object.values(j.dropped as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(j.in).toBe(j.kept + dropped + j.malformed.count);
    expect(j.kept).toBe(4);
    const con = await duckdb();
    const rows = await (await con.run(`SELECT text FROM read_parquet(${sqlString(out)})`)).getRowObjectsJson();
    expect(rows.length).toBe(4);
    expect(String(rows[0].text)).toContain('Document number 1');
  });
});
