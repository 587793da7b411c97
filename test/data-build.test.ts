import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset, type Manifest } from '../src/data/build.js';
import { DEFAULT_NORMALIZE, normalizeText } from '../src/data/clean.js';
import { CorpusGenerator } from '../src/data/generate.js';
import { DataLoader } from '../src/data/loader.js';
import { parseRecipe } from '../src/data/recipe.js';
import { duckdb, sqlString } from '../src/data/read.js';
import { trace } from '../src/data/trace.js';

const root = mkdtempSync(join(tmpdir(), 'data-build-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const RECIPE = `
name: tiny
seed: 7
sources:
  - name: web
    paths: [in/web]
  - name: chat
    kind: sft
    paths: [in/chat.jsonl]
    prompt: "User: {prompt}"
    quality: false
  - name: prefs
    kind: preference
    paths: [in/prefs.jsonl]
    quality: false
clean:
  quality: {min_words: 30}
dedup: {threshold: 0.8}
tokenizer:
  train: {vocab_size: 1024, sample_mb: 1}
output: {shard_tokens: 20000}
stages:
  pretrain:
    mix: [{source: web, weight: 1}]
  sft:
    mix: [{source: chat, epochs: 2}]
  preference:
    mix: [{source: prefs, target_tokens: 3000}]
`;

const bytes = (p: string) => {
  const b = readFileSync(p);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};
const u32 = (p: string) => new Uint32Array(bytes(p));

let m1: Manifest;
let m2: Manifest;
const ds1 = join(root, 'ds1');

beforeAll(async () => {
  mkdirSync(join(root, 'in', 'web'), { recursive: true });
  const g = new CorpusGenerator({ seed: 4, minWords: 60, maxWords: 200 });
  for (let f = 0; f < 2; f++) {
    const lines: string[] = [];
    for (let i = 0; i < 150; i++) lines.push(g.line()[0].trimEnd());
    writeFileSync(join(root, 'in', 'web', `part-${f}.jsonl`), `${lines.join('\n')}\n`);
  }
  const chat = Array.from({ length: 40 }, (_, i) =>
    JSON.stringify({ prompt: `question ${i}: ${g.distinct().slice(0, 80)}`, response: g.distinct().slice(0, 300) }),
  );
  // A Parquet part too: trace re-reads it through DuckDB by row number.
  const rows = Array.from({ length: 40 }, () => g.distinct().replace(/'/g, "''"));
  const con = await duckdb();
  await con.run(
    `COPY (SELECT * FROM (VALUES ${rows.map((r, i) => `('${r}', ${i})`).join(', ')}) t(text, id)) TO ${sqlString(join(root, 'in', 'web', 'part-2.parquet'))} (FORMAT parquet)`,
  );
  writeFileSync(join(root, 'in', 'chat.jsonl'), `${chat.join('\n')}\n`);
  const prefs = Array.from({ length: 30 }, (_, i) =>
    JSON.stringify({ prompt: `pick ${i}`, chosen: g.distinct().slice(0, 200), rejected: g.distinct().slice(0, 150) }),
  );
  writeFileSync(join(root, 'in', 'prefs.jsonl'), `${prefs.join('\n')}\n`);
  writeFileSync(join(root, 'recipe.yaml'), RECIPE);
  m1 = await buildDataset({ recipe: join(root, 'recipe.yaml'), out: ds1 });
  // The second build runs the per-record work on the main thread: results must not depend on workers.
  m2 = await buildDataset({ recipe: join(root, 'recipe.yaml'), out: join(root, 'ds2'), workers: 0 });
}, 120_000);

describe('build', () => {
  it('is deterministic: same recipe and inputs, same version id and bytes (with or without workers)', () => {
    expect(m1.version_id).toMatch(/^v[0-9a-f]{16}$/);
    expect(m2.version_id).toBe(m1.version_id);
    expect(m2.files).toEqual(m1.files);
    expect(readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('records inputs, counts per source and rule, stages and shards', () => {
    expect(m1.inputs.map((i) => i.path)).toEqual([
      'in/web/part-0.jsonl',
      'in/web/part-1.jsonl',
      'in/web/part-2.parquet',
      'in/chat.jsonl',
      'in/prefs.jsonl',
    ]);
    const web = m1.sources.web.report as {
      in: number;
      kept: number;
      dropped: Record<string, number>;
      malformed: { count: number };
    };
    expect(web.in).toBe(340);
    expect(web.in).toBe(web.kept + Object.values(web.dropped).reduce((a, b) => a + b, 0) + web.malformed.count);
    expect(web.dropped.exact ?? 0).toBeGreaterThan(0);
    expect(m1.stages.pretrain.shards.length).toBeGreaterThan(1);
    expect(m1.stages.pretrain.tokens).toBe(m1.sources.web.tokens);
    expect(m1.stages.sft.tokens).toBe(2 * m1.sources.chat.tokens);
    expect(m1.stages.sft.mix[0].epochs).toBe(2);
    expect(m1.stages.preference.tokens).toBeGreaterThanOrEqual(3000);
    expect(m1.token_dtype).toBe('uint16');
    for (const [rel, sha] of Object.entries(m1.files)) {
      expect(existsSync(join(ds1, rel)), rel).toBe(true);
      expect(sha).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('preference pairs stay adjacent (chosen then rejected); SFT docs carry prompt lengths', () => {
    const docs = u32(join(ds1, m1.stages.preference.docs_file));
    for (let d = 0; d < docs.length / 4; d += 2) {
      expect(docs[d * 4 + 3]).toBe(1);
      expect(docs[(d + 1) * 4 + 3]).toBe(2);
      expect(docs[(d + 1) * 4 + 1]).toBe(docs[d * 4 + 1]);
    }
    const sft = u32(join(ds1, m1.stages.sft.docs_file));
    expect(sft[2]).toBeGreaterThan(2);
  });

  it('changing one input file changes the version id; --parent is recorded', async () => {
    const root2 = mkdtempSync(join(tmpdir(), 'data-build2-'));
    try {
      for (const f of [
        'recipe.yaml',
        'in/chat.jsonl',
        'in/prefs.jsonl',
        'in/web/part-0.jsonl',
        'in/web/part-1.jsonl',
        'in/web/part-2.parquet',
      ]) {
        mkdirSync(join(root2, f, '..'), { recursive: true });
        writeFileSync(join(root2, f), readFileSync(join(root, f)));
      }
      appendFileSync(
        join(root2, 'in/chat.jsonl'),
        `${JSON.stringify({ prompt: 'one more', response: 'a brand new answer here' })}\n`,
      );
      const m3 = await buildDataset({ recipe: join(root2, 'recipe.yaml'), out: join(root2, 'ds'), parent: ds1 });
      expect(m3.version_id).not.toBe(m1.version_id);
      expect(m3.parent?.version_id).toBe(m1.version_id);
    } finally {
      rmSync(root2, { recursive: true, force: true });
    }
  });

  it('refuses to overwrite without force; a failed build leaves nothing behind', async () => {
    await expect(buildDataset({ recipe: join(root, 'recipe.yaml'), out: ds1 })).rejects.toThrow(/already exists/);
    writeFileSync(
      join(root, 'bad.yaml'),
      RECIPE.replace('train: {vocab_size: 1024, sample_mb: 1}', 'path: nowhere.json'),
    );
    await expect(buildDataset({ recipe: join(root, 'bad.yaml'), out: join(root, 'ds-bad') })).rejects.toThrow(
      /nowhere\.json/,
    );
    expect(readdirSync(root).filter((f) => f.includes('ds-bad'))).toEqual([]);
  });
});

describe('recipe validation', () => {
  it('names the field, the value and the expectation', () => {
    expect(() => parseRecipe(RECIPE.replace('threshold: 0.8', 'threshold: 1.5'), 'r.yaml')).toThrow(
      /r\.yaml: dedup\.threshold: .*(found 1\.5)/,
    );
    expect(() => parseRecipe(RECIPE.replace('kind: sft', 'kind: chat'), 'r.yaml')).toThrow(
      /sources\.1\.kind: .*"text"\|"sft"\|"preference".*found "chat"/,
    );
    expect(() => parseRecipe(RECIPE.replace('source: chat, epochs', 'source: nope, epochs'), 'r.yaml')).toThrow(
      /stages\.sft\.mix\.0\.source: 'nope' is not a source/,
    );
    expect(() => parseRecipe(RECIPE.replace('seed: 7', 'seed: 7\ncolour: blue'), 'r.yaml')).toThrow(/colour/);
    expect(() => parseRecipe('sources: [', 'r.yaml')).toThrow(/not valid YAML/);
  });
});

describe('trace', () => {
  it('maps every token span of sampled sequences to the right source text', async () => {
    const srcLines = (file: string) => readFileSync(file, 'utf8').split('\n');
    for (const sample of [0, 3, 17]) {
      const r = await trace({ dataset: ds1, stage: 'pretrain', sample, seqLen: 128 });
      expect(r.segments.length).toBeGreaterThan(0);
      let covered = 0;
      for (const s of r.segments) {
        expect(s.verified).toBe(true);
        covered += s.tokens[1] - s.tokens[0];
        if (!s.file.endsWith('.jsonl')) continue; // Parquet rows: next test
        const rec = JSON.parse(srcLines(s.file)[s.line - 1]);
        const cleaned = normalizeText(rec.text, DEFAULT_NORMALIZE);
        expect(cleaned).toContain(s.text.replace(/\.\.\.$/, '').slice(0, 100));
      }
      expect(covered).toBe(128);
    }
  });

  it('traces every sequence of the stage, Parquet rows included', async () => {
    const n = Math.floor(m1.stages.pretrain.tokens / 2048);
    const files = new Set<string>();
    for (let sample = 0; sample < n; sample++) {
      const r = await trace({ dataset: ds1, stage: 'pretrain', sample, seqLen: 2048 });
      for (const s of r.segments) {
        expect(s.verified, `${s.file}:${s.line}`).toBe(true);
        files.add(s.file.split('/').pop()!);
      }
    }
    expect(files).toContain('part-2.parquet');
  });

  it('--step/--batch-size follows the loader order', async () => {
    const dl = await DataLoader.open({
      dataset: ds1,
      stage: 'pretrain',
      seqLen: 64,
      batchSize: 4,
      seed: 7,
      prefetch: 0,
    });
    await dl.next();
    const b = await dl.next();
    await dl.close();
    const r = await trace({ dataset: ds1, stage: 'pretrain', step: 1, batchSize: 4, seqLen: 64 });
    expect(r.segments.map((s) => s.doc)).toEqual(Array.from(b.docIds));
    expect(r.segments.every((s) => s.verified)).toBe(true);
  });

  it('traces SFT and preference stages', async () => {
    const r = await trace({ dataset: ds1, stage: 'preference', sample: 0, seqLen: 64 });
    expect(r.segments.every((s) => s.verified && s.source === 'prefs')).toBe(true);
  });
});

describe('loader', () => {
  it('packs sequences with cu_seqlens at document boundaries', async () => {
    const dl = await DataLoader.open({
      dataset: ds1,
      stage: 'pretrain',
      seqLen: 256,
      batchSize: 3,
      seed: 1,
      prefetch: 0,
    });
    const offsets = Array.from(new BigUint64Array(bytes(join(ds1, m1.stages.pretrain.offsets_file))), Number);
    const b = await dl.next();
    expect(b.tokens.length).toBe(768);
    const cu = Array.from(b.cuSeqlens);
    expect(cu[0]).toBe(0);
    expect(cu[cu.length - 1]).toBe(768);
    for (let i = 1; i < cu.length; i++) expect(cu[i]).toBeGreaterThan(cu[i - 1]);
    // Every boundary is a document end or a row end.
    for (let i = 1; i < cu.length; i++) {
      const row = Math.floor((cu[i] - 1) / 256);
      const pos = b.samples[row] * 256 + (cu[i] - row * 256);
      expect(cu[i] % 256 === 0 || offsets.includes(pos)).toBe(true);
    }
    // EOS closes every document.
    const eos = m1.tokenizer.eos_id!;
    for (let i = 1; i < cu.length; i++) if (cu[i] % 256 !== 0) expect(b.tokens[cu[i] - 1]).toBe(eos);
    await dl.close();
  });

  it('is deterministic by seed, resumable from a serialised state, and the worker matches the main thread', async () => {
    const opts = { dataset: ds1, stage: 'pretrain', seqLen: 64, batchSize: 4, seed: 3 };
    const a = await DataLoader.open({ ...opts, prefetch: 0 });
    const seq: number[][] = [];
    let saved = '';
    const n = a.stepsPerEpoch + 3; // crosses an epoch
    for (let i = 0; i < n; i++) {
      const b = await a.next();
      seq.push(Array.from(b.samples));
      if (i === 4) saved = JSON.stringify(a.state());
    }
    await a.close();
    const w = await DataLoader.open({ ...opts, prefetch: 3 });
    for (let i = 0; i < n; i++) expect(Array.from((await w.next()).samples)).toEqual(seq[i]);
    await w.close();
    const r = await DataLoader.open({ ...opts, prefetch: 2, state: JSON.parse(saved) });
    for (let i = 5; i < n; i++) expect(Array.from((await r.next()).samples)).toEqual(seq[i]);
    await r.close();
    const other = await DataLoader.open({ ...opts, seed: 4, prefetch: 0 });
    expect(Array.from((await other.next()).samples)).not.toEqual(seq[0]);
    await other.close();
    // Each epoch visits every sample once.
    const epoch0 = seq.slice(0, a.stepsPerEpoch).flat();
    expect(new Set(epoch0).size).toBe(epoch0.length);
    await expect(DataLoader.open({ ...opts, batchSize: 5, state: JSON.parse(saved) })).rejects.toThrow(
      /state\.batch_size: 4/,
    );
  });
});
