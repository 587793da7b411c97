/**
 * On-disk layout of a dataset version (all little-endian, memory-mappable fixed-width arrays):
 *
 *   manifest.json                    written last; its presence marks a complete dataset
 *   tokenizer.json                   the tokenizer the shards were made with
 *   dedup_clusters.jsonl             one line per removed duplicate: representative and duplicate locations
 *   sources/<name>.records.f64       per kept record: [file index, line/row, byte offset or -1] as float64
 *   stages/<stage>/tokens-NNNNN.bin  the stage's token stream, uint16 or uint32, shard_tokens per file
 *   stages/<stage>/offsets.u64       n_docs + 1 uint64 token offsets into the stream (cu_seqlens over the stage)
 *   stages/<stage>/docs.u32          per doc [source index, record index, prompt tokens, role] as uint32
 *
 * role: 0 text / SFT, 1 preference chosen, 2 preference rejected (pairs are adjacent, chosen first).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type TokenDType = 'uint16' | 'uint32';

export function shardName(i: number): string {
  return `tokens-${String(i).padStart(5, '0')}.bin`;
}

export interface ShardInfo {
  file: string;
  tokens: number;
  sha256: string;
}

/** Appends tokens across fixed-size shards, hashing each file as it is written. */
export class TokenShardWriter {
  shards: ShardInfo[] = [];
  total = 0;
  private fd = -1;
  private inShard = 0;
  private hash = createHash('sha256');
  private buf: Uint32Array | Uint16Array;
  private n = 0;

  constructor(
    readonly dir: string,
    readonly shardTokens: number,
    readonly dtype: TokenDType,
  ) {
    this.buf = dtype === 'uint16' ? new Uint16Array(1 << 20) : new Uint32Array(1 << 20);
  }

  private flush(): void {
    if (!this.n) return;
    const bytes = Buffer.from(this.buf.buffer, 0, this.n * this.buf.BYTES_PER_ELEMENT);
    writeSync(this.fd, bytes);
    this.hash.update(bytes);
    this.n = 0;
  }

  private closeShard(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.shards[this.shards.length - 1].tokens = this.inShard;
    this.shards[this.shards.length - 1].sha256 = this.hash.digest('hex');
    this.fd = -1;
  }

  append(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      if (this.fd < 0 || this.inShard === this.shardTokens) {
        this.closeShard();
        const file = shardName(this.shards.length);
        this.shards.push({ file, tokens: 0, sha256: '' });
        this.fd = openSync(join(this.dir, file), 'w');
        this.hash = createHash('sha256');
        this.inShard = 0;
      }
      this.buf[this.n++] = ids[i];
      this.inShard++;
      this.total++;
      if (this.n === this.buf.length) this.flush();
    }
  }

  close(): ShardInfo[] {
    this.closeShard();
    return this.shards;
  }
}

/** Random-access reads of a stage's token stream (positional reads; the OS page cache does the rest). */
export class TokenReader {
  private fds: number[] = [];
  private scratch: Buffer = Buffer.alloc(0);
  readonly total: number;
  private bpe: number;

  constructor(
    readonly dir: string,
    readonly shards: { file: string; tokens: number }[],
    readonly shardTokens: number,
    readonly dtype: TokenDType,
  ) {
    this.bpe = dtype === 'uint16' ? 2 : 4;
    this.total = shards.reduce((a, s) => a + s.tokens, 0);
  }

  private fd(i: number): number {
    if (this.fds[i] === undefined) this.fds[i] = openSync(join(this.dir, this.shards[i].file), 'r');
    return this.fds[i];
  }

  /** Reads tokens [start, start + out.length) into out. */
  read(start: number, out: Uint32Array): void {
    if (start < 0 || start + out.length > this.total) {
      throw new Error(`token range [${start}, ${start + out.length}) is outside the stream of ${this.total} tokens`);
    }
    let done = 0;
    while (done < out.length) {
      const pos = start + done;
      const si = Math.floor(pos / this.shardTokens);
      const within = pos - si * this.shardTokens;
      const n = Math.min(out.length - done, this.shards[si].tokens - within);
      const bytes = n * this.bpe;
      if (this.bpe === 4) {
        const view = Buffer.from(out.buffer, out.byteOffset + done * 4, bytes);
        readFully(this.fd(si), view, within * 4);
      } else {
        if (this.scratch.length < bytes) this.scratch = Buffer.alloc(bytes);
        readFully(this.fd(si), this.scratch, within * 2, bytes);
        for (let i = 0; i < n; i++) out[done + i] = this.scratch[2 * i] | (this.scratch[2 * i + 1] << 8);
      }
      done += n;
    }
  }

  close(): void {
    for (const fd of this.fds) if (fd !== undefined) closeSync(fd);
    this.fds = [];
  }
}

export function readFully(fd: number, buf: Buffer, position: number, length = buf.length): void {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new Error(`unexpected end of file at byte ${position + got}`);
    got += n;
  }
}
