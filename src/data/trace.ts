/**
 * Lineage: token spans -> documents -> source file, record (line/row), byte offset of the record, and the
 * byte range inside the cleaned document text. The record is re-read and re-cleaned with the recipe stored in
 * the manifest and re-tokenized; `verified` says the stored tokens equal the re-derived ones.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ByteLevelBpe } from '../io/tokenizer/bpe.js';
import { loadTokenizer } from '../io/tokenizer/index.js';
import type { Tokenizer } from '../io/tokenizer/types.js';
import { emptyPiiCounts } from './clean.js';
import { type Manifest, readManifest } from './build.js';
import { epochOrder, numSamples, StageData } from './loaderCore.js';
import { renderRecord } from './pipeline.js';
import { detectFile, readFile } from './read.js';
import { cleanConfig, type RecipeInput, sourceSpecs } from './recipe.js';

export interface TraceSegment {
  row: number;
  sample: number;
  /** Token range inside the sample row. */
  tokens: [number, number];
  doc: number;
  /** Token range inside the document. */
  doc_tokens: [number, number];
  source: string;
  file: string;
  line: number;
  record_offset: number;
  role: number;
  prompt_tokens: number;
  /** Byte range of the span inside the cleaned document text (prompt + body, UTF-8). */
  text_bytes: [number, number];
  text: string;
  verified: boolean;
}

export interface TraceOptions {
  dataset: string;
  stage?: string;
  sample?: number;
  step?: number;
  batchSize?: number;
  seqLen: number;
  seed?: number;
  shuffle?: boolean;
  /** Characters of span text shown per segment. */
  maxChars?: number;
}

async function readRecordAt(path: string, line: number, offset: number): Promise<Record<string, unknown> | null> {
  const d = detectFile(path);
  if (!d) return null;
  if (d.format === 'jsonl' && d.compression === 'none' && offset >= 0) {
    const fd = openSync(path, 'r');
    try {
      const chunks: Buffer[] = [];
      let pos = offset;
      for (;;) {
        const b = Buffer.alloc(1 << 16);
        const n = readSync(fd, b, 0, b.length, pos);
        if (n === 0) break;
        const nl = b.subarray(0, n).indexOf(10);
        if (nl >= 0) {
          chunks.push(b.subarray(0, nl));
          break;
        }
        chunks.push(b.subarray(0, n));
        pos += n;
      }
      return JSON.parse(Buffer.concat(chunks).toString('utf8').replace(/\r$/, ''));
    } finally {
      closeSync(fd);
    }
  }
  const { units } = readFile({ path, ...d, bytes: 1 });
  for await (const batch of units) {
    for (const u of batch) {
      if (u.line === line && u.kind === 'record') {
        await units.return(undefined);
        return u.value;
      }
    }
  }
  return null;
}

export async function trace(o: TraceOptions): Promise<{ version_id: string; stage: string; segments: TraceSegment[] }> {
  const m: Manifest = readManifest(o.dataset);
  const stage = o.stage ?? Object.keys(m.stages)[0];
  const data = new StageData(o.dataset, stage);
  const L = o.seqLen;
  const n = numSamples(data, L);
  let samples: number[];
  if (o.sample !== undefined) {
    if (!(o.sample >= 0 && o.sample < n))
      throw new Error(`--sample ${o.sample}: expected 0..${n - 1} for seq-len ${L}`);
    samples = [o.sample];
  } else {
    if (o.step === undefined || o.batchSize === undefined)
      throw new Error('trace: give --sample I, or --step N with --batch-size B');
    const steps = Math.floor(n / o.batchSize);
    if (steps === 0) throw new Error(`--batch-size ${o.batchSize}: the stage has only ${n} samples of ${L}`);
    const epoch = Math.floor(o.step / steps);
    const order = epochOrder(n, o.seed ?? m.recipe.seed, epoch, o.shuffle ?? true);
    const s = o.step % steps;
    samples = Array.from(order.subarray(s * o.batchSize, (s + 1) * o.batchSize));
  }
  const recipe = m.recipe.canonical as RecipeInput;
  const clean = cleanConfig(recipe);
  const specs = sourceSpecs(recipe);
  const recipeDir = dirname(m.recipe.file);
  const tok: Tokenizer = await loadTokenizer(join(o.dataset, m.tokenizer.file));
  const metaBuf = readFileSync(join(o.dataset, m.stages[stage].docs_file));
  const docsMeta = new Uint32Array(metaBuf.buffer.slice(metaBuf.byteOffset, metaBuf.byteOffset + metaBuf.byteLength));
  const records = new Map<string, Float64Array>();
  const recOf = (src: string) => {
    let r = records.get(src);
    if (!r) {
      const b = readFileSync(join(o.dataset, m.sources[src].records_file));
      r = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      records.set(src, r);
    }
    return r;
  };
  const srcNames = Object.keys(m.sources).sort((a, b) => m.sources[a].index - m.sources[b].index);
  const enc = new TextEncoder();
  const segments: TraceSegment[] = [];
  for (let row = 0; row < samples.length; row++) {
    const s = samples[row];
    const start = s * L;
    const toks = new Uint32Array(L);
    data.reader.read(start, toks);
    let d = data.docAt(start);
    for (;;) {
      const ds = data.offsets[d];
      const de = data.offsets[d + 1];
      const a = Math.max(ds, start);
      const b = Math.min(de, start + L);
      const [si, rec, promptTokens, role] = docsMeta.subarray(d * 4, d * 4 + 4);
      const src = srcNames[si];
      const rr = recOf(src);
      const fileIdx = rr[3 * rec];
      const line = rr[3 * rec + 1];
      const off = rr[3 * rec + 2];
      const input = m.inputs[fileIdx];
      const file = input ? resolve(recipeDir, input.path) : `#${fileIdx}`;
      const docTokens = new Uint32Array(de - ds);
      data.reader.read(ds, docTokens);
      let verified = false;
      let textBytes: [number, number] = [0, 0];
      const spanIds = Array.from(docTokens.subarray(a - ds, b - ds));
      let text = tok.decode(spanIds);
      const value = await readRecordAt(file, line, off);
      if (value) {
        const r = renderRecord(value, specs[si], clean, emptyPiiCounts());
        if ('docs' in r) {
          const doc = r.docs[role === 2 ? 1 : 0];
          const ids = [...(doc.prompt ? tok.encode(doc.prompt) : []), ...tok.encode(doc.body)];
          if (m.tokenizer.eos_id !== null) ids.push(m.tokenizer.eos_id);
          verified = ids.length === docTokens.length && ids.every((x, i) => x === docTokens[i]);
          const full = enc.encode(doc.prompt + doc.body);
          const bytesOf = (k: number) =>
            tok instanceof ByteLevelBpe
              ? Array.from(docTokens.subarray(0, k)).reduce(
                  (acc, id) => acc + (id === m.tokenizer.eos_id ? 0 : tok.bytesOf(id).length),
                  0,
                )
              : enc.encode(tok.decode(Array.from(docTokens.subarray(0, k)).filter((id) => id !== m.tokenizer.eos_id)))
                  .length;
          textBytes = [Math.min(bytesOf(a - ds), full.length), Math.min(bytesOf(b - ds), full.length)];
          text = Buffer.from(full.subarray(textBytes[0], textBytes[1])).toString('utf8');
        }
      }
      const max = o.maxChars ?? 200;
      segments.push({
        row,
        sample: s,
        tokens: [a - start, b - start],
        doc: d,
        doc_tokens: [a - ds, b - ds],
        source: src,
        file,
        line,
        record_offset: off,
        role,
        prompt_tokens: promptTokens,
        text_bytes: textBytes,
        text: text.length > max ? `${text.slice(0, max)}...` : text,
        verified,
      });
      if (de >= start + L) break;
      d++;
    }
  }
  data.reader.close();
  return { version_id: m.version_id, stage, segments };
}
