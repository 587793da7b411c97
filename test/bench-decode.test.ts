import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { benchDecode } from '../src/bench/decode.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { FIXTURES } from './helpers.js';

describe('bench decode', () => {
  it('times hybrid and all-MLA at each context and reports their ratio (tiny config, random weights, cpu)', async () => {
    const json = JSON.parse(readFileSync(`${FIXTURES}/tiny-kimi/config.json`, 'utf8'));
    const r = await benchDecode(cpu, json, { contexts: [8, 200], steps: 2, cacheDtype: 'bf16', weightsDtype: 'f32' });
    expect(r.rows.map((x) => `${x.model}@${x.context}`)).toEqual([
      'hybrid@8',
      'hybrid@200',
      'all-MLA@8',
      'all-MLA@200',
    ]);
    for (const x of r.rows) expect(x.tpotMs as number).toBeGreaterThan(0);
    // The latent cache grows with the context; the KDA state does not.
    const cache = (m: string, c: number) => r.rows.find((x) => x.model === m && x.context === c)!.cacheGB as number;
    expect(cache('all-MLA', 200)).toBeGreaterThan(cache('all-MLA', 8));
    expect(cache('all-MLA', 200) - cache('all-MLA', 8)).toBeGreaterThan(cache('hybrid', 200) - cache('hybrid', 8));
    expect(r.ratios).toHaveLength(2);
  });
});
