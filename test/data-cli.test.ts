import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CorpusGenerator } from '../src/data/generate.js';
import { ROOT } from './helpers.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'data-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[]) =>
  run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'data', ...args], { cwd: ROOT }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('kimi-linear data (CLI)', () => {
  it('clean and dedup write outputs, tables and JSON reports', async () => {
    const g = new CorpusGenerator({ seed: 1 });
    const lines = Array.from({ length: 300 }, () => g.line()[0]).join('');
    writeFileSync(join(dir, 'in.jsonl'), `${lines}not json\n`);
    const c = await cli([
      'clean',
      '--in',
      join(dir, 'in.jsonl'),
      '--out',
      join(dir, 'clean.jsonl'),
      '--report',
      join(dir, 'c.json'),
    ]);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/dropped because/);
    const cr = JSON.parse(readFileSync(join(dir, 'c.json'), 'utf8'));
    expect(cr.malformed.count).toBeGreaterThanOrEqual(1);
    expect(cr.malformed.examples.at(-1).line).toBe(301);
    const d = await cli([
      'dedup',
      '--in',
      join(dir, 'clean.jsonl'),
      '--out',
      join(dir, 'dedup.parquet'),
      '--threshold',
      '0.85',
      '--report',
      join(dir, 'd.json'),
      '--json',
    ]);
    expect(d.code).toBe(0);
    const dr = JSON.parse(d.stdout);
    expect(dr.in).toBe(cr.kept);
    expect(dr.dedup.threshold).toBe(0.85);
    expect(Object.keys(dr.dropped).every((k) => k === 'exact' || k === 'near')).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'd.json'), 'utf8')).kept).toBe(dr.kept);
  });

  it('bad input: exit 1 with a message naming the file / option and what was expected', async () => {
    const a = await cli(['clean', '--in', join(dir, 'missing.jsonl')]);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/missing\.jsonl': no such file/);
    const b = await cli(['dedup', '--in', join(dir, 'in.jsonl'), '--out', join(dir, 'x.txt')]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/x\.txt'.*expected a \.jsonl or \.parquet/);
    const c = await cli(['dedup', '--in', join(dir, 'in.jsonl'), '--threshold', 'high']);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/--threshold: 'high' is not a number/);
  });
});
