import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Deduper, DEFAULT_DEDUP, shingleJaccard } from '../src/data/dedup.js';
import { CorpusGenerator } from '../src/data/generate.js';
import { mulberry32 } from '../src/data/hash.js';
import { dedupStage } from '../src/data/stages.js';

const dir = mkdtempSync(join(tmpdir(), 'data-dedup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Distinct documents, exact copies, and near copies (3 words changed, case or whitespace altered). */
function corpus(nDistinct: number, seed: number) {
  const g = new CorpusGenerator({ seed, minWords: 300, maxWords: 600 });
  const rnd = mulberry32(seed + 99);
  const distinct = Array.from({ length: nDistinct }, () => g.distinct());
  const docs: { text: string; kind: 'distinct' | 'exact' | 'near'; of: number }[] = distinct.map((text, i) => ({
    text,
    kind: 'distinct',
    of: i,
  }));
  for (let i = 0; i < nDistinct / 5; i++) {
    const of = Math.floor(rnd() * nDistinct);
    docs.push({ text: distinct[of], kind: 'exact', of });
  }
  for (let i = 0; i < nDistinct / 5; i++) {
    const of = Math.floor(rnd() * nDistinct);
    const words = distinct[of].split(' ');
    for (let e = 0; e < 3; e++) words[Math.floor(rnd() * words.length)] = g.vocab[Math.floor(rnd() * g.vocab.length)];
    let text = words.join(' ');
    const r = rnd();
    if (r < 0.33) text = text.toUpperCase();
    else if (r < 0.66) text = text.replace(/ /g, () => (rnd() < 0.1 ? ' \t ' : ' ')).replace(/\./g, '.\n');
    docs.push({ text, kind: 'near', of });
  }
  // Originals first so the representative is the distinct document.
  const head = docs.slice(0, nDistinct);
  const tail = docs.slice(nDistinct);
  for (let i = tail.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [tail[i], tail[j]] = [tail[j], tail[i]];
  }
  return [...head, ...tail];
}

describe('dedup', () => {
  it('removes all exact, >= 95% of near (J >= 0.9) duplicates, keeps >= 99% of distinct docs', () => {
    const docs = corpus(2000, 5);
    const d = new Deduper(DEFAULT_DEDUP);
    let exactRemoved = 0;
    let exact = 0;
    let near = 0;
    let nearRemoved = 0;
    let distinct = 0;
    let distinctKept = 0;
    for (const doc of docs) {
      const r = d.check(doc.text);
      if (doc.kind === 'distinct') {
        distinct++;
        if (!r) distinctKept++;
      } else if (doc.kind === 'exact') {
        exact++;
        if (r) exactRemoved++;
      } else if (shingleJaccard(doc.text, docs[doc.of].text) >= 0.9) {
        near++;
        if (r) nearRemoved++;
      }
    }
    expect(exact).toBeGreaterThan(300);
    expect(exactRemoved).toBe(exact);
    expect(near).toBeGreaterThan(250);
    expect(nearRemoved / near).toBeGreaterThanOrEqual(0.95);
    expect(distinctKept / distinct).toBeGreaterThanOrEqual(0.99);
  });

  it('keeps documents below the threshold and reports the estimated Jaccard', () => {
    const g = new CorpusGenerator({ seed: 3, minWords: 200, maxWords: 201 });
    const a = g.distinct();
    const words = a.split(' ');
    // Rewrite every 4th word: shingle Jaccard far below 0.8.
    const b = words.map((w, i) => (i % 4 === 0 ? `${w}x` : w)).join(' ');
    expect(shingleJaccard(a, b)).toBeLessThan(0.2);
    const d = new Deduper({ ...DEFAULT_DEDUP, exact: false });
    expect(d.check(a)).toBeNull();
    expect(d.check(b)).toBeNull();
    const c = words.map((w, i) => (i === 100 ? 'changed' : w)).join(' ');
    const r = d.check(c);
    expect(r?.reason).toBe('near');
    expect(r?.of).toBe(0);
    expect(r!.jaccard).toBeGreaterThan(0.85);
  });

  it('rejects bands that do not divide permutations, naming both', () => {
    expect(() => new Deduper({ ...DEFAULT_DEDUP, permutations: 100, bands: 16 })).toThrow(
      /permutations \(100\).*bands \(16\)/,
    );
  });

  it('dedup stage: report adds up, reasons exact/near, --threshold, clusters file, JSONL output', async () => {
    const docs = corpus(600, 11);
    const inPath = join(dir, 'in.jsonl');
    writeFileSync(
      inPath,
      `${docs.map((d, i) => JSON.stringify({ id: i, text: d.text })).join('\n')}\n{"text": broken\n`,
    );
    const out = join(dir, 'out.jsonl');
    const report = join(dir, 'report.json');
    const clusters = join(dir, 'clusters.jsonl');
    const r = await dedupStage({ inputs: [inPath], out, report, clusters, dedup: { threshold: 0.8 } });
    const j = JSON.parse(readFileSync(report, 'utf8'));
    expect(j.in).toBe(docs.length + 1);
    expect(j.in).toBe(
      j.kept + Object.values(j.dropped as Record<string, number>).reduce((a, b) => a + b, 0) + j.malformed.count,
    );
    expect(j.dropped.exact).toBe(120);
    expect(j.dropped.near).toBeGreaterThan(100);
    expect(j.malformed.count).toBe(1);
    expect(j.malformed.examples[0]).toMatchObject({ file: inPath, line: docs.length + 1 });
    const kept = readFileSync(out, 'utf8').trim().split('\n');
    expect(kept.length).toBe(r.kept);
    const cl = readFileSync(clusters, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(cl.length).toBe(j.dropped.exact + j.dropped.near);
    // Every duplicate points at the distinct original it was made from.
    for (const c of cl.slice(0, 50)) {
      const dup = docs[c.duplicate.line - 1];
      expect(c.representative.line - 1).toBe(dup.of);
    }
    // A strict threshold keeps more near duplicates.
    const strict = await dedupStage({ inputs: [inPath], dedup: { threshold: 0.99 } });
    expect(strict.dropped.near ?? 0).toBeLessThan(j.dropped.near);
    expect(strict.dropped.exact).toBe(120);
  });
});
