/**
 * `data build`: recipe -> dataset version. Sources are read, cleaned, deduplicated (one index across all
 * sources, in recipe order, first occurrence kept) and tokenized into per-source scratch token files; each stage's
 * mix then picks records (weights, target tokens, epochs, upsampling), shuffles them with the recipe seed and
 * writes the token shards. Everything goes to a temporary sibling folder renamed into place at the end, so a crash
 * never leaves a partial dataset that looks complete (manifest.json is written last, inside the temp folder).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { loadTokenizer } from '../io/tokenizer/index.js';
import { PreTokenCounter, trainBpe } from '../io/tokenizer/train.js';
import type { Tokenizer } from '../io/tokenizer/types.js';
import { mulberry32 } from './hash.js';
import { Deduper } from './dedup.js';
import { defaultWorkers, RefTable, runStages, type SourceSpec } from './pipeline.js';
import { byteProgress } from './progress.js';
import { listInputs, type InputFile } from './read.js';
import {
  canonicalJson,
  cleanConfig,
  dedupConfig,
  loadRecipe,
  type Recipe,
  resolvePath,
  sourceSpecs,
} from './recipe.js';
import { Report } from './report.js';
import { readFully, type ShardInfo, type TokenDType, TokenShardWriter } from './shards.js';
import { BufferedWriter } from './write.js';

export const DATASET_FORMAT = 'kimi-linear-dataset/1';

export function toolVersion(): string {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

export interface StageManifest {
  docs: number;
  tokens: number;
  shards: ShardInfo[];
  offsets_file: string;
  docs_file: string;
  mix: { source: string; records: number; docs: number; tokens: number; epochs: number; share: number }[];
}

export interface Manifest {
  format: string;
  version_id: string;
  name: string;
  created_at: string;
  tool: { name: string; version: string };
  parent: { path: string; version_id: string } | null;
  recipe: { file: string; sha256: string; seed: number; canonical: unknown };
  inputs: { source: string; path: string; sha256: string; bytes: number }[];
  tokenizer: {
    file: string;
    sha256: string;
    vocab_size: number;
    eos_id: number | null;
    trained: boolean;
    train_seconds?: number;
  };
  token_dtype: TokenDType;
  shard_tokens: number;
  sources: Record<
    string,
    { index: number; records_file: string; records: number; docs: number; tokens: number; report: unknown }
  >;
  dedup: unknown;
  stages: Record<string, StageManifest>;
  files: Record<string, string>;
}

/** Per-source scratch: tokens on disk, per-record/per-doc arrays in memory (~40 bytes per doc). */
class SourceStore {
  fd: number;
  tokens = 0;
  private buf = new Uint32Array(1 << 20);
  private n = 0;
  // per record
  recFile: number[] = [];
  recLine: number[] = [];
  recOffset: number[] = [];
  recFirstDoc: number[] = [];
  recDocs: number[] = [];
  // per doc
  docStart: number[] = [];
  docLen: number[] = [];
  docPrompt: number[] = [];
  docRole: number[] = [];

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w+');
  }

  private flush(): void {
    if (!this.n) return;
    writeSync(this.fd, Buffer.from(this.buf.buffer, 0, this.n * 4), 0, this.n * 4, (this.tokens - this.n) * 4);
    this.n = 0;
  }

  push(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      this.buf[this.n++] = ids[i];
      this.tokens++;
      if (this.n === this.buf.length) this.flush();
    }
  }

  finish(): void {
    this.flush();
  }

  recordTokens(r: number): number {
    let t = 0;
    for (let d = this.recFirstDoc[r]; d < this.recFirstDoc[r] + this.recDocs[r]; d++) t += this.docLen[d];
    return t;
  }

  read(start: number, len: number): Uint32Array {
    const out = new Uint32Array(len);
    if (len) readFully(this.fd, Buffer.from(out.buffer), start * 4, len * 4);
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface BuildOptions {
  recipe: string;
  out: string;
  /** Replace an existing dataset at out. */
  force?: boolean;
  /** Lineage: the dataset this one derives from (overrides recipe.parent). */
  parent?: string;
  log?: (msg: string) => void;
  /** Worker threads for cleaning/hashing/tokenizing (default: one per core; 0 = this thread). */
  workers?: number;
}

function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function buildDataset(opts: BuildOptions): Promise<Manifest> {
  const log = opts.log ?? (() => {});
  const recipe = loadRecipe(opts.recipe);
  const out = resolve(opts.out);
  if (existsSync(out) && !opts.force) {
    throw new Error(`--out ${out}: already exists (use --force to replace it)`);
  }
  const parentDir = opts.parent ?? (recipe.parent ? resolvePath(recipe, recipe.parent) : undefined);
  let parent: Manifest['parent'] = null;
  if (parentDir) {
    const pm = readManifest(parentDir);
    parent = { path: resolve(parentDir), version_id: pm.version_id };
  }
  mkdirSync(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(join(tmp, 'work'), { recursive: true });
  mkdirSync(join(tmp, 'sources'));
  mkdirSync(join(tmp, 'stages'));
  try {
    const m = await buildInto(recipe, tmp, parent, log, opts);
    if (existsSync(out)) {
      const old = `${tmp}.old`;
      renameSync(out, old);
      renameSync(tmp, out);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, out);
    return m;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function buildInto(
  recipe: Recipe,
  tmp: string,
  parent: Manifest['parent'],
  log: (m: string) => void,
  opts: BuildOptions,
): Promise<Manifest> {
  const specs = sourceSpecs(recipe);
  const clean = cleanConfig(recipe);
  const allFiles: InputFile[] = [];
  const filesOf: InputFile[][] = [];
  const bases: number[] = [];
  const unsupported: string[] = [];
  for (const s of recipe.sources) {
    const { files, unsupported: u } = listInputs(s.paths.map((p) => resolvePath(recipe, p)));
    if (!files.length)
      throw new Error(`recipe ${recipe.file}: sources.${s.name}.paths: no readable inputs in ${s.paths.join(', ')}`);
    bases.push(allFiles.length);
    allFiles.push(...files);
    filesOf.push(files);
    unsupported.push(...u);
  }
  const totalBytes = allFiles.reduce((a, f) => a + f.bytes, 0);

  // Tokenizer.
  let tokenizer: Tokenizer;
  let tokJson: string;
  let trainSeconds: number | undefined;
  const tcfg = recipe.tokenizer;
  if (tcfg.path) {
    const p = resolvePath(recipe, tcfg.path);
    tokenizer = await loadTokenizer(p);
    tokJson = readFileSync(p, 'utf8');
  } else {
    const t = tcfg.train!;
    const t0 = performance.now();
    const counter = new PreTokenCounter();
    const perSource = (t.sample_mb * 1e6) / specs.length;
    for (let si = 0; si < specs.length; si++) {
      const start = counter.bytes;
      await runStages({
        files: filesOf[si],
        source: specs[si],
        clean,
        deduper: null,
        report: new Report('sample'),
        onKept: (d) => {
          for (const doc of d.docs) counter.add(doc.prompt + doc.body);
        },
        until: () => counter.bytes - start >= perSource,
      });
    }
    const bpe = trainBpe(counter, {
      vocabSize: t.vocab_size,
      minFrequency: t.min_frequency,
      specialTokens: t.special_tokens,
    });
    trainSeconds = (performance.now() - t0) / 1000;
    log(
      `tokenizer: trained ${bpe.vocabSize} tokens on ${(counter.bytes / 1e6).toFixed(1)} MB in ${trainSeconds.toFixed(1)} s`,
    );
    tokenizer = bpe;
    tokJson = JSON.stringify(bpe.toHuggingFace());
  }
  writeFileSync(join(tmp, 'tokenizer.json'), tokJson);
  const eosId = tokenizer.tokenId?.(tcfg.eos) ?? null;
  if (tcfg.append_eos && eosId === null) {
    throw new Error(
      `recipe ${recipe.file}: tokenizer.eos: '${tcfg.eos}' is not a token of the tokenizer (set append_eos: false or name its end token)`,
    );
  }

  // Main pass: clean -> dedup (global) -> tokenize.
  const dcfg = dedupConfig(recipe);
  const deduper = dcfg.exact || dcfg.near ? new Deduper(dcfg) : null;
  const refs = new RefTable();
  const clusters = new BufferedWriter(join(tmp, 'dedup_clusters.jsonl'));
  const stores: SourceStore[] = [];
  const reports: Report[] = [];
  const progress = byteProgress('build', totalBytes);
  const relIn = (p: string) => relative(recipe.dir, p) || p;
  for (let si = 0; si < specs.length; si++) {
    const store = new SourceStore(join(tmp, 'work', `${si}.u32`));
    const report = new Report(`source ${specs[si].name}`);
    await runStages({
      files: filesOf[si],
      source: specs[si],
      clean,
      deduper,
      refs,
      report,
      progress,
      fileBase: bases[si],
      allFiles,
      onDuplicate: (d) =>
        clusters.write(
          `${JSON.stringify({ reason: d.reason, jaccard: Number(d.jaccard.toFixed(4)), duplicate: { file: relIn(d.file), line: d.line }, representative: { file: relIn(d.repFile), line: d.repLine } })}\n`,
        ),
      tokenize: { path: join(tmp, 'tokenizer.json'), eosId: tcfg.append_eos ? eosId : null, tokenizer },
      workers: opts.workers ?? defaultWorkers(),
      wantText: false,
      onKept: (k) => {
        store.recFile.push(k.fileIdx);
        store.recLine.push(k.line);
        store.recOffset.push(k.offset);
        store.recFirstDoc.push(store.docLen.length);
        store.recDocs.push(k.docs.length);
        const t = k.tokens!;
        for (let d = 0; d < t.lens.length; d++) {
          store.docStart.push(store.tokens + t.lens.slice(0, d).reduce((a, b) => a + b, 0));
          store.docLen.push(t.lens[d]);
          store.docPrompt.push(t.prompts[d]);
          store.docRole.push(k.docs[d].role);
        }
        store.push(t.ids);
      },
    });
    store.finish();
    report.tokens = store.tokens;
    report.check();
    stores.push(store);
    reports.push(report);
    log(`source ${specs[si].name}: in ${report.in}, kept ${report.kept}, tokens ${store.tokens}`);
  }
  progress.stop();
  clusters.close();

  // Records provenance.
  const sourcesOut: Manifest['sources'] = {};
  for (let si = 0; si < specs.length; si++) {
    const s = stores[si];
    const rec = new Float64Array(s.recFile.length * 3);
    for (let r = 0; r < s.recFile.length; r++) {
      rec[3 * r] = s.recFile[r];
      rec[3 * r + 1] = s.recLine[r];
      rec[3 * r + 2] = s.recOffset[r];
    }
    const rf = `sources/${specs[si].name}.records.f64`;
    writeFileSync(join(tmp, rf), Buffer.from(rec.buffer));
    sourcesOut[specs[si].name] = {
      index: si,
      records_file: rf,
      records: s.recFile.length,
      docs: s.docLen.length,
      tokens: s.tokens,
      report: reports[si].toJSON(),
    };
  }

  // Stages.
  const dtype: TokenDType =
    recipe.output.token_dtype === 'auto'
      ? tokenizer.vocabSize <= 65536
        ? 'uint16'
        : 'uint32'
      : recipe.output.token_dtype;
  if (dtype === 'uint16' && tokenizer.vocabSize > 65536) {
    throw new Error(`recipe ${recipe.file}: output.token_dtype: uint16 cannot hold vocab of ${tokenizer.vocabSize}`);
  }
  const stagesOut: Record<string, StageManifest> = {};
  const srcIndex = new Map(specs.map((s, i) => [s.name, i]));
  for (const [stageName, stage] of Object.entries(recipe.stages)) {
    const dir = join(tmp, 'stages', stageName);
    mkdirSync(dir);
    const plan = planStage(recipe, stageName, stage, stores, srcIndex);
    const writer = new TokenShardWriter(dir, recipe.output.shard_tokens, dtype);
    const nDocs = plan.units.reduce((a, u) => a + stores[u[0]].recDocs[u[1]], 0);
    const offsets = new BigUint64Array(nDocs + 1);
    const meta = new Uint32Array(nDocs * 4);
    let di = 0;
    for (const [si, r] of plan.units) {
      const s = stores[si];
      const first = s.recFirstDoc[r];
      const last = first + s.recDocs[r] - 1;
      const toks = s.read(s.docStart[first], s.docStart[last] + s.docLen[last] - s.docStart[first]);
      writer.append(toks);
      for (let d = first; d <= last; d++) {
        offsets[di + 1] = offsets[di] + BigInt(s.docLen[d]);
        meta.set([si, r, s.docPrompt[d], s.docRole[d]], di * 4);
        di++;
      }
    }
    const shards = writer.close();
    writeFileSync(join(dir, 'offsets.u64'), Buffer.from(offsets.buffer));
    writeFileSync(join(dir, 'docs.u32'), Buffer.from(meta.buffer));
    stagesOut[stageName] = {
      docs: nDocs,
      tokens: writer.total,
      shards,
      offsets_file: `stages/${stageName}/offsets.u64`,
      docs_file: `stages/${stageName}/docs.u32`,
      mix: plan.mix,
    };
    log(`stage ${stageName}: ${nDocs} docs, ${writer.total} tokens in ${shards.length} shard(s)`);
  }
  for (const s of stores) s.close();
  rmSync(join(tmp, 'work'), { recursive: true, force: true });

  // Manifest and content-derived version id.
  const files: Record<string, string> = {};
  const hashFile = (rel: string) => {
    files[rel] = sha256(readFileSync(join(tmp, rel)));
  };
  hashFile('tokenizer.json');
  hashFile('dedup_clusters.jsonl');
  for (const name of Object.keys(sourcesOut)) hashFile(sourcesOut[name].records_file);
  for (const [name, st] of Object.entries(stagesOut)) {
    for (const sh of st.shards) files[`stages/${name}/${sh.file}`] = sh.sha256;
    hashFile(st.offsets_file);
    hashFile(st.docs_file);
  }
  const inputs: Manifest['inputs'] = [];
  specs.forEach((s, si) => {
    for (const f of reports[si].files) {
      inputs.push({ source: s.name, path: relIn(f.path), sha256: f.sha256 ?? '', bytes: f.bytes });
    }
  });
  const tool = { name: 'kimi-linear', version: toolVersion() };
  const { file: _f, dir: _d, sha256: recipeSha, ...canonical } = recipe;
  const idBasis = {
    format: DATASET_FORMAT,
    tool,
    recipe: recipeSha,
    parent: parent?.version_id ?? null,
    inputs: inputs.map((i) => [i.source, i.sha256]),
    files,
  };
  const versionId = `v${sha256(canonicalJson(idBasis)).slice(0, 16)}`;
  const manifest: Manifest = {
    format: DATASET_FORMAT,
    version_id: versionId,
    name: recipe.name,
    created_at: new Date().toISOString(),
    tool,
    parent,
    recipe: { file: recipe.file, sha256: recipeSha, seed: recipe.seed, canonical },
    inputs,
    tokenizer: {
      file: 'tokenizer.json',
      sha256: files['tokenizer.json'],
      vocab_size: tokenizer.vocabSize,
      eos_id: tcfg.append_eos ? eosId : null,
      trained: !tcfg.path,
      ...(trainSeconds !== undefined ? { train_seconds: Number(trainSeconds.toFixed(2)) } : {}),
    },
    token_dtype: dtype,
    shard_tokens: recipe.output.shard_tokens,
    sources: sourcesOut,
    dedup: {
      ...dcfg,
      clusters_file: 'dedup_clusters.jsonl',
      removed: {
        exact: reports.reduce((a, r) => a + (r.dropped.exact ?? 0), 0),
        near: reports.reduce((a, r) => a + (r.dropped.near ?? 0), 0),
      },
      index_bytes: deduper?.memoryBytes ?? 0,
    },
    stages: stagesOut,
    files,
  };
  if (unsupported.length) (manifest as unknown as Record<string, unknown>).unsupported_files = unsupported.map(relIn);
  writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Chooses records per mix entry and shuffles them (seeded); whole records keep preference pairs together. */
function planStage(
  recipe: Recipe,
  stageName: string,
  stage: Recipe['stages'][string],
  stores: SourceStore[],
  srcIndex: Map<string, number>,
): { units: [number, number][]; mix: StageManifest['mix'] } {
  let seedHash = recipe.seed >>> 0;
  for (let i = 0; i < stageName.length; i++) seedHash = Math.imul(seedHash ^ stageName.charCodeAt(i), 0x01000193) >>> 0;
  const rnd = mulberry32(seedHash);
  const avail = stage.mix.map((m) => stores[srcIndex.get(m.source)!].tokens);
  const targets = stage.mix.map((m, i) =>
    m.target_tokens !== undefined ? m.target_tokens : m.weight === undefined ? (m.epochs ?? 1) * avail[i] : -1,
  );
  const weighted = stage.mix.map((m, i) => (m.weight !== undefined ? i : -1)).filter((i) => i >= 0);
  if (weighted.length) {
    const wsum = weighted.reduce((a, i) => a + stage.mix[i].weight!, 0);
    const fixed = targets.reduce((a, t) => a + Math.max(t, 0), 0);
    const budget =
      stage.total_tokens !== undefined
        ? stage.total_tokens - fixed
        : Math.min(...weighted.map((i) => (avail[i] * stage.mix[i].max_epochs) / (stage.mix[i].weight! / wsum)));
    if (budget < 0) {
      throw new Error(
        `recipe ${recipe.file}: stages.${stageName}.total_tokens: ${stage.total_tokens} is below the fixed targets (${fixed})`,
      );
    }
    for (const i of weighted) targets[i] = Math.round((budget * stage.mix[i].weight!) / wsum);
  }
  const units: [number, number][] = [];
  const mix: StageManifest['mix'] = [];
  const total = targets.reduce((a, b) => a + b, 0);
  stage.mix.forEach((m, i) => {
    const si = srcIndex.get(m.source)!;
    const s = stores[si];
    const nrec = s.recFile.length;
    let left = targets[i];
    let records = 0;
    let docs = 0;
    let tokens = 0;
    if (nrec === 0 || avail[i] === 0) {
      mix.push({ source: m.source, records: 0, docs: 0, tokens: 0, epochs: 0, share: 0 });
      return;
    }
    // Whole passes (upsampling), then a seeded random subset of records for the remainder.
    while (left > 0) {
      const order = Array.from({ length: nrec }, (_, k) => k);
      if (left < avail[i]) {
        for (let k = nrec - 1; k > 0; k--) {
          const j = Math.floor(rnd() * (k + 1));
          [order[k], order[j]] = [order[j], order[k]];
        }
      }
      for (const r of order) {
        if (left <= 0) break;
        const t = s.recordTokens(r);
        units.push([si, r]);
        records++;
        docs += s.recDocs[r];
        tokens += t;
        left -= t;
      }
    }
    mix.push({
      source: m.source,
      records,
      docs,
      tokens,
      epochs: Number((tokens / avail[i]).toFixed(4)),
      share: total ? Number((tokens / total).toFixed(4)) : 0,
    });
  });
  for (let k = units.length - 1; k > 0; k--) {
    const j = Math.floor(rnd() * (k + 1));
    [units[k], units[j]] = [units[j], units[k]];
  }
  return { units, mix };
}

export function readManifest(dir: string): Manifest {
  const p = join(dir, 'manifest.json');
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new Error(`dataset ${dir}: no readable manifest.json (${(e as Error).message}); is it a complete dataset?`);
  }
  if (m.format !== DATASET_FORMAT)
    throw new Error(`dataset ${dir}: manifest format '${m.format}', expected '${DATASET_FORMAT}'`);
  return m;
}

export type { SourceSpec };
