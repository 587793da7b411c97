import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { cli, FIXTURES, hasGpu, relErr } from './helpers.js';

/** Run `forward --grad` on the golden case0 tokens; check names, shapes and a few gradients against golden. */
async function checkCli(backend: string, ...extra: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'kl-grad-'));
  const g = await openSafetensors(`${FIXTURES}/golden/tiny-kimi-golden.safetensors`);
  const ids = (await g.readHost('case0.input_ids')).data as Int32Array;
  const T = ids.length / 2;
  await writeFile(join(dir, 't.json'), JSON.stringify([Array.from(ids.slice(0, T)), Array.from(ids.slice(T))]));
  const out = join(dir, 'out.safetensors');
  const r = await cli(
    'forward',
    ...['--model', `${FIXTURES}/tiny-kimi`, '--tokens', join(dir, 't.json'), '--out', out, '--backend', backend],
    '--grad',
    ...extra,
  );
  expect(r.code, r.stderr).toBe(0);
  const f = await openSafetensors(out);
  const model = await openSafetensors(`${FIXTURES}/tiny-kimi/model.safetensors`);
  const gradNames = f.names.filter((n) => n.startsWith('grad.')).sort();
  expect(gradNames).toEqual(model.names.map((n) => `grad.${n}`).sort());
  expect(f.has('logits') && f.has('loss')).toBe(true);
  for (const name of [
    'model.embed_tokens.weight',
    'model.layers.0.self_attn.A_log',
    'model.layers.2.block_sparse_moe.experts.5.w2.weight',
    'model.layers.3.self_attn.kv_b_proj.weight',
    'lm_head.weight',
  ]) {
    const got = (await f.readHost(`grad.${name}`)).data as Float32Array;
    const want = (await g.readHost(`case0.grad.${name}`)).data as Float32Array;
    expect(f.info(`grad.${name}`).shape).toEqual(model.info(name).shape);
    expect(relErr(got, want), name).toBeLessThan(1e-3);
  }
  // Not trained by gradient: written as zeros so every parameter has its grad.<name>.
  const bias = (await f.readHost('grad.model.layers.1.block_sparse_moe.gate.e_score_correction_bias'))
    .data as Float32Array;
  expect(bias.every((v) => v === 0)).toBe(true);
  for (const x of [f, g, model]) await x.close();
}

describe('kimi-linear forward --grad', () => {
  it('cpu: grad.<name> for every checkpoint tensor (experts one by one), matching the golden gradients', async () => {
    await checkCli('cpu');
  });
  it.skipIf(!hasGpu)('WebGPU with --checkpointing: the same', async () => {
    await checkCli('webgpu', '--checkpointing');
  });
});
