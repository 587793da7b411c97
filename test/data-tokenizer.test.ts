import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CorpusGenerator } from '../src/data/generate.js';
import { mulberry32 } from '../src/data/hash.js';
import { GPT2_PATTERN, splitGpt2Ascii } from '../src/io/tokenizer/bpe.js';
import { ByteLevelBpe, loadTokenizer, trainBpe } from '../src/io/tokenizer/index.js';

const dir = mkdtempSync(join(tmpdir(), 'data-tok-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const g = new CorpusGenerator({ seed: 9 });
const sample: string[] = [];
let bytes = 0;
while (bytes < 3e6) {
  const d = `${g.distinct()} Ünïcödé 😀 café — ${bytes % 1000} it's "quoted"\n\n  spaced`;
  sample.push(d);
  bytes += d.length;
}
const tricky = [
  "Hello wörld 😀 it's 12345  spaces\n\n\tnew",
  '',
  ' ',
  '日本語のテキスト',
  'a\u0000b',
  'x'.repeat(5000),
];

describe('byte-level BPE', () => {
  let bpe: ByteLevelBpe;
  it('trains on a 3 MB sample in seconds, to the requested vocab size', () => {
    const t0 = performance.now();
    bpe = trainBpe(sample, { vocabSize: 4096, specialTokens: ['<|endoftext|>', '<|pad|>'] });
    const s = (performance.now() - t0) / 1000;
    expect(s).toBeLessThan(60);
    expect(bpe.vocabSize).toBe(4096);
    expect(bpe.tokenId('<|endoftext|>')).toBe(4094);
    // It compresses: well under one token per byte on text like the sample.
    const ids = bpe.encode(sample[0]);
    expect(ids.length / Buffer.byteLength(sample[0])).toBeLessThan(0.5);
  });

  it('the ASCII splitter gives exactly the GPT-2 regex pieces', () => {
    const re = new RegExp(GPT2_PATTERN, 'gu');
    const alphabet = "ab Z09'stremvld \n\t\r\x0b\x0c.,!#-_'  \n\n";
    const rnd = mulberry32(5);
    for (let it = 0; it < 20000; it++) {
      const len = Math.floor(rnd() * 24);
      let t = '';
      for (let i = 0; i < len; i++) t += alphabet[Math.floor(rnd() * alphabet.length)];
      const pieces: string[] = [];
      splitGpt2Ascii(t, (a, b) => pieces.push(t.slice(a, b)));
      expect(pieces).toEqual([...t.matchAll(re)].map((m) => m[0]));
    }
  });

  it('round-trips any text, including bytes no merge covers', () => {
    for (const t of [...tricky, ...sample.slice(0, 20)]) expect(bpe.decode(bpe.encode(t))).toBe(t);
  });

  it('writes a tokenizer.json that @huggingface/tokenizers encodes identically', async () => {
    const path = join(dir, 'tokenizer.json');
    writeFileSync(path, JSON.stringify(bpe.toHuggingFace()));
    const fast = await loadTokenizer(path);
    const lib = await loadTokenizer(path, { forceLibrary: true });
    expect(fast).toBeInstanceOf(ByteLevelBpe);
    expect(lib).not.toBeInstanceOf(ByteLevelBpe);
    expect(lib.vocabSize).toBe(4096);
    for (const t of [...tricky.slice(0, 4), ...sample.slice(0, 30)]) {
      expect(lib.encode(t)).toEqual(fast.encode(t));
      expect(lib.decode(fast.encode(t))).toBe(t);
    }
    expect(lib.tokenId?.('<|pad|>')).toBe(4095);
  });

  it('loads a tiktoken ranks file through js-tiktoken', async () => {
    // Ranks: the 256 bytes, then the merges of the trained model (tiktoken ranks are byte strings).
    const lines: string[] = [];
    for (let id = 0; id < 256 + bpe.model.merges.length; id++)
      lines.push(`${Buffer.from(bpe.bytesOf(id)).toString('base64')} ${id}`);
    const path = join(dir, 'tiny.tiktoken');
    writeFileSync(path, `${lines.join('\n')}\n`);
    const tk = await loadTokenizer(path, { pattern: bpe.model.pattern });
    expect(tk.vocabSize).toBe(256 + bpe.model.merges.length + 1);
    for (const t of sample.slice(0, 10)) {
      expect(tk.decode(tk.encode(t))).toBe(t);
      expect(tk.encode(t)).toEqual(bpe.encode(t));
    }
  });

  it('errors name the file and what was expected', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"version": "1.0"}');
    await expect(loadTokenizer(bad)).rejects.toThrow(/bad\.json.*'model'/);
    await expect(loadTokenizer(join(dir, 'missing.json'))).rejects.toThrow(/missing\.json.*cannot read/);
    expect(() => trainBpe(['x'], { vocabSize: 100 })).toThrow(/vocab_size 100/);
  });
});
