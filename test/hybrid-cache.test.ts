import { describe, expect, it } from 'vitest';
import { HybridCache } from '../src/model/hybridCache.js';
import { PagePool } from '../src/model/pagePool.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { gpuContext, hasGpu } from './helpers.js';

describe('PagePool', () => {
  it('hands out and takes back pages, and says how many are left when it runs out', () => {
    const p = new PagePool(4);
    expect(p.alloc(3)).toEqual([0, 1, 2]);
    expect(() => p.alloc(2)).toThrow(/2 pages wanted, 1 of 4 free/);
    p.release([1]);
    expect(p.alloc(2).sort()).toEqual([1, 3]);
  });
});

const spec = {
  kdaLayers: 3,
  mlaLayers: 1,
  kdaHeads: 2,
  kdaHeadDim: 4,
  convSize: 4,
  latentDim: 6,
  maxSequences: 3,
  pageSize: 4,
  numPages: 5,
  maxLength: 12,
  cacheDtype: 'bf16' as const,
};

describe('HybridCache', () => {
  it('grows sequences page by page through one page table and frees them on close', async () => {
    const c = new HybridCache(cpu, spec);
    const a = c.open();
    const b = c.open();
    expect(c.reserve(a, 5)).toEqual({ start: 0, end: 5 });
    expect(c.reserve(b, 3)).toEqual({ start: 0, end: 3 });
    expect(c.reserve(a, 4)).toEqual({ start: 5, end: 9 });
    const table = (await c.pageTable.read()) as Int32Array;
    const row = (s: number) => Array.from(table.subarray(s * c.maxPagesPerSeq, s * c.maxPagesPerSeq + 3));
    expect(row(a)).toEqual([0, 1, 3]);
    expect(row(b).slice(0, 1)).toEqual([2]);
    expect(() => c.reserve(a, 4)).toThrow(/past the cache's maxLength 12/);
    c.close(a);
    const d = c.open();
    c.reserve(d, 12);
    expect(c.length(d)).toBe(12);
  });

  it('reports memory: constant KDA state, paged MLA latents', () => {
    const c = new HybridCache(cpu, spec);
    const m = c.memory();
    expect(m.kdaStateBytes).toBe(3 * 3 * 2 * 4 * 4 * 4);
    expect(m.convTailBytes).toBe(3 * 3 * 3 * 3 * 2 * 4 * 4);
    expect(m.mlaPoolBytes).toBe(1 * 5 * 4 * 6 * 2);
  });

  it.skipIf(!hasGpu)('lives on the GPU with zeroed state', async () => {
    const gpu = (await gpuContext())!;
    const c = new HybridCache(gpu, spec);
    expect(Array.from(await c.kdaState[0].read()).every((x) => x === 0)).toBe(true);
    const s = c.open();
    c.reserve(s, 6);
    const table = (await c.pageTable.read()) as Int32Array;
    expect(Array.from(table.subarray(s * c.maxPagesPerSeq, s * c.maxPagesPerSeq + 2))).toEqual([0, 1]);
    c.dispose();
  });
});

describe('HybridCache and inspect agree', () => {
  it('per-sequence KDA bytes and per-token MLA bytes match cacheSizes() of the tiny config', async () => {
    const { readFileSync } = await import('node:fs');
    const { parseKimiConfig } = await import('../src/model/config.js');
    const { cacheSizes } = await import('../src/model/inspect.js');
    const { FIXTURES } = await import('./helpers.js');
    const cfg = parseKimiConfig(JSON.parse(readFileSync(`${FIXTURES}/tiny-kimi/config.json`, 'utf8')));
    const lac = cfg.linear_attn_config!;
    const sizes = cacheSizes(cfg, 'bf16');
    const c = new HybridCache(cpu, {
      kdaLayers: sizes.kdaLayers,
      mlaLayers: sizes.mlaLayers,
      kdaHeads: lac.num_heads,
      kdaHeadDim: lac.head_dim,
      convSize: lac.short_conv_kernel_size,
      latentDim: (cfg.kv_lora_rank ?? 0) + (cfg.qk_rope_head_dim ?? 0),
      maxSequences: 1,
      pageSize: 1,
      numPages: 1,
      maxLength: 1,
      cacheDtype: 'bf16',
    });
    const m = c.memory();
    expect(m.kdaStateBytes + m.convTailBytes).toBe(sizes.kdaBytesPerSequence);
    expect(m.mlaPoolBytes).toBe(Math.max(4, sizes.mlaBytesPerToken));
  });
});

describe('HybridCache bookkeeping for a decode batch', () => {
  it('pageRows gathers page-table rows in batch order; tableVersion moves only when pages change', () => {
    const c = new HybridCache(cpu, spec);
    const a = c.open();
    const b = c.open();
    c.reserve(a, 5); // pages 0, 1
    c.reserve(b, 2); // page 2
    const v = c.tableVersion;
    c.reserve(b, 1); // still inside page 2
    expect(c.tableVersion).toBe(v);
    const rows = c.pageRows([b, a]);
    const W = c.maxPagesPerSeq;
    expect(Array.from(rows.subarray(0, 1))).toEqual([2]);
    expect(Array.from(rows.subarray(W, W + 2))).toEqual([0, 1]);
    expect(c.freePages).toBe(2);
    expect(c.freeSlotCount).toBe(1);
    c.close(a);
    expect(c.tableVersion).toBeGreaterThan(v);
    expect(c.freePages).toBe(4);
    expect(() => c.close(a)).toThrow(/slot 0 is not an open sequence slot/);
    c.dispose();
  });
});

describe('HybridCache pool shards', () => {
  // 5 pages of 4 x 6 bf16 (48 bytes) over 3 slots: 2 pages per slot, pools of at most 4 pages.
  it('splits a layer pool past maxPoolBytes into buffers of whole slot groups, pages local to each', () => {
    const c = new HybridCache(cpu, { ...spec, maxPoolBytes: 4 * 48 });
    expect(c.shardCount).toBe(2);
    expect(c.mlaPools[0].map((t) => t.shape[0])).toEqual([4, 2]);
    expect([0, 1, 2].map((s) => c.shardOf(s))).toEqual([0, 0, 1]);
    const [a, b, d] = [c.open(), c.open(), c.open()];
    c.reserve(a, 8);
    c.reserve(b, 8);
    c.reserve(d, 8);
    // Page numbers restart in the second shard.
    const W = c.maxPagesPerSeq;
    expect(Array.from(c.pageRows([d]).subarray(0, 2))).toEqual([0, 1]);
    expect(Array.from(c.pageRows([b]).subarray(0, W).slice(0, 2))).toEqual([2, 3]);
    expect(() => c.reserve(a, 1)).toThrow(/cache pool exhausted: 1 pages wanted, 0 of 4 free/);
    expect(c.memory().mlaPoolBytes).toBe(6 * 48);
    c.dispose();
  });

  it('refuses a pool limit below one sequence share, naming both', () => {
    expect(() => new HybridCache(cpu, { ...spec, maxPoolBytes: 48 })).toThrow(
      /one sequence's share of a layer's latent pool \(2 pages of 48 bytes\) is over the largest pool buffer \(maxPoolBytes 48\)/,
    );
  });
});
