import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { cli, FIXTURES } from './helpers.js';

describe('kimi-linear forward', () => {
  it('writes logits and the loss of the golden case0 tokens; bad token files fail with the place named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kl-forward-'));
    const g = await openSafetensors(`${FIXTURES}/golden/tiny-kimi-golden.safetensors`);
    const ids = (await g.readHost('case0.input_ids')).data as Int32Array;
    const goldenLoss = ((await g.readHost('case0.loss')).data as Float32Array)[0];
    await g.close();
    const T = ids.length / 2;
    await writeFile(join(dir, 't.json'), JSON.stringify([Array.from(ids.slice(0, T)), Array.from(ids.slice(T))]));
    const out = join(dir, 'out.safetensors');
    const r = await cli(
      'forward',
      '--model',
      `${FIXTURES}/tiny-kimi`,
      '--tokens',
      join(dir, 't.json'),
      '--out',
      out,
      '--backend',
      'cpu',
    );
    expect(r.code, r.stderr).toBe(0);
    const f = await openSafetensors(out);
    expect(f.info('logits').shape).toEqual([2, T, 256]);
    const loss = ((await f.readHost('loss')).data as Float32Array)[0];
    expect(Math.abs(loss - goldenLoss) / goldenLoss).toBeLessThan(1e-4);
    await f.close();

    await writeFile(join(dir, 'bad.json'), '[[1, 2], [3, 999]]');
    const bad = await cli(
      'forward',
      '--model',
      `${FIXTURES}/tiny-kimi`,
      '--tokens',
      join(dir, 'bad.json'),
      '--out',
      join(dir, 'x.safetensors'),
      '--backend',
      'cpu',
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.json: list 1 position 1: 999 is not a token id in \[0, 256\)/);
    expect(bad.stderr).not.toMatch(/ at .*\.ts:\d+/);
  });
});
