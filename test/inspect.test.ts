import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../src/io/safetensors/index.js';
import { cacheSizes, checkCheckpoint, countParameters, expectedTensors, inspectConfig } from '../src/model/inspect.js';
import { loadKimiConfig } from '../src/model/loadConfig.js';
import { cli, FIXTURES } from './helpers.js';

const TINY_DIR = join(FIXTURES, 'tiny-kimi');
const BIG = join(FIXTURES, 'configs/kimi-linear-48b-a3b.json');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'kimi-inspect-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('inspect by formula', () => {
  it('48B-A3B: released parameter count, activated count and cache sizes', async () => {
    const cfg = await loadKimiConfig(BIG);
    const p = countParameters(cfg);
    // The released checkpoint's headers sum to exactly this (20 shards, 20,493 tensors).
    expect(p.total).toBe(49_122_681_728);
    expect(expectedTensors(cfg).length).toBe(20_493);
    expect(p.embedding).toBe(163840 * 2304);
    expect(p.lmHead).toBe(163840 * 2304);
    // Without embeddings / lm_head, with 8 of 256 routed experts + the shared one per MoE layer.
    expect(p.activated).toBe(2_729_485_184);
    const c = cacheSizes(cfg, 'bf16');
    expect(c.mlaBytesPerToken).toBe(8064);
    expect(c.allMlaBytesPerToken).toBe(31104);
    expect(c.kdaStateBytesPerLayer).toBe(32 * 128 * 128 * 4);
    expect(c.kdaConvBytesPerLayer).toBe(3 * 3 * 32 * 128 * 4);
    expect(c.kdaBytesPerSequence).toBe(20 * (2_097_152 + 147_456));
    expect(cacheSizes(cfg, 'f32').mlaBytesPerToken).toBe(16128);
    // int8: 512 + 64 codes in 16-byte-padded word groups plus two f32 scales and padding = 148 words (592 B) per
    // layer, 7 MLA layers here.
    expect(cacheSizes(cfg, 'int8').mlaBytesPerToken).toBe(7 * 592);
  });

  it('tiny-kimi: the formula equals the sum of numel in model.safetensors, tensor by tensor', async () => {
    const cfg = await loadKimiConfig(join(TINY_DIR, 'config.json'));
    const ck = await openCheckpoint(TINY_DIR);
    const summary = { files: ck.files, tensors: ck.tensors() };
    const check = checkCheckpoint(cfg, summary);
    await ck.close();
    expect(check.params).toBe(303_972);
    expect(check.formulaParams).toBe(303_972);
    expect(check.missing).toEqual([]);
    expect(check.unexpected).toEqual([]);
    expect(check.shapeMismatches).toEqual([]);
    expect(check.matches).toBe(true);
    const r = inspectConfig(cfg, 'tiny', { checkpoint: summary });
    expect(r.layers.map((l) => `${l.mixer}/${l.ffn}`)).toEqual(['kda/dense', 'kda/moe', 'kda/moe', 'mla/moe']);
    expect(r.cache.mlaBytesPerToken).toBe(1 * (16 + 8) * 2);
  });

  it('the cross-check reports missing, unexpected and reshaped tensors', async () => {
    const cfg = await loadKimiConfig(join(TINY_DIR, 'config.json'));
    const ck = await openCheckpoint(TINY_DIR);
    const tensors = ck.tensors().filter((t) => t.name !== 'lm_head.weight');
    await ck.close();
    tensors.push({ name: 'extra.bias', shape: [3], dtype: 'F32', file: 'x' });
    const i = tensors.findIndex((t) => t.name === 'model.norm.weight');
    tensors[i] = { ...tensors[i], shape: [65] };
    const check = checkCheckpoint(cfg, { files: ['x'], tensors });
    expect(check.matches).toBe(false);
    expect(check.missing).toEqual(['lm_head.weight']);
    expect(check.unexpected).toEqual(['extra.bias']);
    expect(check.shapeMismatches).toEqual([{ name: 'model.norm.weight', expected: [64], found: [65] }]);
  });
});

function expectCleanFailure(r: Awaited<ReturnType<typeof cli>>, pattern: RegExp): void {
  expect(r.signal).toBeNull();
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^kimi-linear: /);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('kimi-linear inspect (CLI)', () => {
  it('--json on the 48B config gives the acceptance numbers', async () => {
    const r = await cli('inspect', '--config', BIG, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.layers).toHaveLength(27);
    expect(j.layers[3]).toEqual({ index: 3, mixer: 'mla', ffn: 'moe' });
    expect(Math.abs(j.params.total / 49.1e9 - 1)).toBeLessThan(0.01);
    expect(Math.abs(j.params.activated / 2.7e9 - 1)).toBeLessThan(0.05);
    expect(j.params.total).toBe(49_122_681_728);
    expect(j.params.activated).toBe(2_729_485_184);
    expect(j.cache.mlaBytesPerToken).toBe(8064);
    expect(j.cache.allMlaBytesPerToken).toBe(31104);
    expect(j.cache.kdaBytesPerSequence).toBe(44_892_160);
    expect(j.checkpoint).toBeUndefined();
  });

  it('--model on tiny-kimi: layer map table and a matching checkpoint cross-check', async () => {
    const [r, js] = await Promise.all([
      cli('inspect', '--model', TINY_DIR, '--cache-dtype', 'f32'),
      cli('inspect', '--model', TINY_DIR, '--json'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/layers: 4 \(KDA 3, MLA 1; dense 1, MoE 3\)/);
    expect(r.stdout).toMatch(/parameters in safetensors headers\s*│\s*303,972/);
    expect(r.stdout).toMatch(/parameters by formula\s*│\s*303,972/);
    expect(r.stdout).toMatch(/headers match the config/);
    const j = JSON.parse(js.stdout);
    expect(j.layers.map((l: { mixer: string; ffn: string }) => `${l.mixer}/${l.ffn}`)).toEqual([
      'kda/dense',
      'kda/moe',
      'kda/moe',
      'mla/moe',
    ]);
    expect(j.checkpoint.params).toBe(j.params.total);
    expect(j.checkpoint.matches).toBe(true);
  });

  it('bad inputs exit 1 with a clear message and no stack trace', async () => {
    const cfg = JSON.parse(await readFile(join(TINY_DIR, 'config.json'), 'utf8'));
    cfg.linear_attn_config.kda_layers = [1, 3];
    await writeFile(join(tmp, 'gap.json'), JSON.stringify(cfg));
    cfg.linear_attn_config.kda_layers = [1, 2, 3];
    cfg.hidden_size = 'big';
    await writeFile(join(tmp, 'type.json'), JSON.stringify(cfg));
    // A model directory whose weights are truncated.
    const dir = join(tmp, 'trunc');
    await mkdir(dir);
    await copyFile(join(TINY_DIR, 'config.json'), join(dir, 'config.json'));
    const bytes = await readFile(join(TINY_DIR, 'model.safetensors'));
    await writeFile(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.byteLength - 100));

    const cases: [string[], RegExp][] = [
      [[], /give --model DIR .* or --config FILE/],
      [['--config', join(tmp, 'none.json')], /none\.json: file not found/],
      [['--model', join(tmp, 'none')], /--model .*none: no such file or directory/],
      [['--config', BIG, '--cache-dtype', 'fp8'], /--cache-dtype: 'fp8' is not bf16, f32, int8 or f16/],
      [
        ['--config', join(tmp, 'gap.json')],
        /ConfigError: .*gap\.json: layer 1 \(number 2 in the 1-based lists\) is in neither/,
      ],
      [['--config', join(tmp, 'type.json')], /field 'hidden_size' is "big" \(string\), expected number/],
      [
        ['--model', dir],
        /SafetensorsError: .*model\.safetensors: tensor '.*': data_offsets \[\d+, \d+\] run past the end of the data region .*truncated/,
      ],
    ];
    const results = await Promise.all(cases.map(([args]) => cli('inspect', ...args)));
    for (const [i, r] of results.entries()) expectCleanFailure(r, cases[i][1]);
  });
});
