import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX_FILE, openCheckpoint, SafetensorsError, writeSafetensors } from '../src/io/safetensors/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { FIXTURES, gpuContext, hasGpu } from './helpers.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kimi-ckpt-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';

/** A 2-shard checkpoint; `edit` may change the weight map before it is written. */
async function sharded(name: string, edit?: (wm: Record<string, string>) => void): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir);
  await writeSafetensors(join(dir, SHARD1), {
    'model.embed_tokens.weight': { dtype: 'F32', shape: [4, 2], data: new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]) },
    'model.norm.weight': { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4000]) },
  });
  await writeSafetensors(join(dir, SHARD2), {
    'lm_head.weight': { dtype: 'F32', shape: [4, 2], data: new Float32Array([8, 9, 10, 11, 12, 13, 14, 15]) },
  });
  const weight_map: Record<string, string> = {
    'model.embed_tokens.weight': SHARD1,
    'model.norm.weight': SHARD1,
    'lm_head.weight': SHARD2,
  };
  edit?.(weight_map);
  await writeFile(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: 68 }, weight_map }));
  return dir;
}

describe('Checkpoint', () => {
  it('opens a 2-shard directory: names, shapes, dtypes, lazy loads across shards', async () => {
    const ck = await openCheckpoint(await sharded('ok'));
    expect(ck.files.sort()).toEqual([SHARD1, SHARD2]);
    expect(ck.names).toEqual(['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']);
    expect(ck.info('lm_head.weight')).toEqual({ name: 'lm_head.weight', dtype: 'F32', shape: [4, 2], file: SHARD2 });
    expect(ck.info('model.norm.weight').dtype).toBe('BF16');
    expect(ck.parameterCount).toBe(18);
    expect(ck.metadata).toEqual({ total_size: 68 });
    expect([...(await (await ck.loadTensor('lm_head.weight', cpu)).read())]).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect([...(await (await ck.loadTensor('model.norm.weight', cpu, { dtype: 'f32' })).read())]).toEqual([1, 2]);
    await expect(ck.loadTensor('nope', cpu)).rejects.toThrow(/tensor 'nope': no such tensor in the checkpoint/);
    await ck.close();
  });

  it.skipIf(!hasGpu)('loads shards straight to the GPU', async () => {
    const gpu = (await gpuContext())!;
    const ck = await openCheckpoint(await sharded('gpu'));
    const t = await ck.loadTensor('model.embed_tokens.weight', gpu, { dtype: 'bf16' });
    expect(t.backend).toBe('webgpu');
    expect([...(await t.toFloat32())]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    t.dispose();
    await ck.close();
  });

  it('opens a directory with model.safetensors, and a bare file', async () => {
    const dir = join(FIXTURES, 'tiny-kimi');
    const a = await openCheckpoint(dir);
    expect(a.files).toEqual(['model.safetensors']);
    expect(a.parameterCount).toBe(303972);
    await a.close();
    const b = await openCheckpoint(join(root, 'ok', SHARD2));
    expect(b.names).toEqual(['lm_head.weight']);
    expect(b.info('lm_head.weight').file).toBe(SHARD2);
    await b.close();
  });

  it('a weight_map shard file that does not exist', async () => {
    const dir = await sharded('missing-shard', (wm) => {
      wm['lm_head.weight'] = 'model-00003-of-00002.safetensors';
    });
    await expect(openCheckpoint(dir)).rejects.toThrow(
      /model\.safetensors\.index\.json: weight_map names shard 'model-00003-of-00002\.safetensors' \(e\.g\. for tensor 'lm_head\.weight'\) but the file does not exist/,
    );
  });

  it('a tensor listed in the index but absent from its shard', async () => {
    const dir = await sharded('absent', (wm) => {
      wm['model.layers.0.mlp.up_proj.weight'] = SHARD2;
    });
    const err = await openCheckpoint(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `${SHARD2}: tensor 'model.layers.0.mlp.up_proj.weight': listed in model.safetensors.index.json as stored in '${SHARD2}', but that shard has no such tensor`,
      ),
    );
  });

  it('a malformed index and a directory without weights', async () => {
    const dir = join(root, 'badindex');
    await mkdir(dir);
    await writeFile(join(dir, INDEX_FILE), '{"weight_map": ');
    await expect(openCheckpoint(dir)).rejects.toThrow(/index\.json: not valid JSON/);
    await writeFile(join(dir, INDEX_FILE), '{"weight_map": {"a": "../../etc/passwd"}}');
    await expect(openCheckpoint(dir)).rejects.toThrow(
      /tensor 'a': weight_map entry is "\.\.\/\.\.\/etc\/passwd", expected a shard file name/,
    );
    await writeFile(join(dir, INDEX_FILE), '{"metadata": {}}');
    await expect(openCheckpoint(dir)).rejects.toThrow(/weight_map is undefined, expected an object/);
    const empty = join(root, 'empty');
    await mkdir(empty);
    await expect(openCheckpoint(empty)).rejects.toThrow(
      /empty: no model\.safetensors\.index\.json or model\.safetensors/,
    );
    await expect(openCheckpoint(join(root, 'nowhere'))).rejects.toThrow(/nowhere: no such file or directory/);
  });

  it('a corrupt shard is reported with its path', async () => {
    const dir = await sharded('corrupt');
    await copyFile(join(FIXTURES, 'golden/README.md'), join(dir, SHARD2));
    await expect(openCheckpoint(dir)).rejects.toThrow(new RegExp(`${SHARD2}: header length \\d+ runs past the end`));
  });
});

describe('Checkpoint over an in-memory store (the browser path)', () => {
  it('reads an index and shards from ArrayBuffers', async () => {
    const { bufferSource, Checkpoint, serializeSafetensors } = await import('../src/io/safetensors/core.js');
    const files = new Map<string, Uint8Array>([
      ['s1.safetensors', serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } })],
      ['s2.safetensors', serializeSafetensors({ b: { dtype: 'I32', shape: [1], data: new Int32Array([7]) } })],
    ]);
    const index = JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's2.safetensors' } });
    const ck = await Checkpoint.fromStore({
      name: 'https://example.invalid/model',
      readText: async (f) => (f === INDEX_FILE ? index : undefined),
      open: async (f) => (files.has(f) ? bufferSource(files.get(f)!, f) : undefined),
    });
    expect(ck.names).toEqual(['a', 'b']);
    expect([...(await (await ck.loadTensor('b', cpu)).read())]).toEqual([7]);
    await ck.close();
  });
});
