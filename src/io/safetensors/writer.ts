/**
 * Writing a safetensors file atomically: everything goes to a temporary file beside the target, which is
 * fsynced and then renamed over it, so a reader never sees a half-written checkpoint (a crash leaves the
 * old file or none). Tensor data is written entry by entry, never concatenated in memory.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Tensor } from '../../tensor/tensor.js';
import { encodeLayout, type TensorData, type TensorMap } from './encode.js';

export interface WriteOptions {
  metadata?: Record<string, string>;
}

export async function writeSafetensors(path: string, tensors: TensorMap, opts: WriteOptions = {}): Promise<void> {
  const layout = encodeLayout(tensors, opts.metadata, path);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w');
  try {
    let pos = 0;
    for (const chunk of [layout.prefix, ...layout.entries.map((e) => e.bytes)]) {
      let done = 0;
      while (done < chunk.byteLength) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done, pos + done);
        done += bytesWritten;
      }
      pos += chunk.byteLength;
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  // Persist the rename itself; not every platform lets a directory be opened, so this is best effort.
  try {
    const d = await open(dirname(path), 'r');
    await d.sync().finally(() => d.close());
  } catch {}
}

/** Read tensors back from their devices into writable entries (stored as F32, BF16 or I32). */
export async function tensorsToData(
  tensors: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>,
): Promise<Map<string, TensorData>> {
  const out = new Map<string, TensorData>();
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, Tensor>);
  for (const [name, t] of list) out.set(name, { dtype: t.dtype, shape: [...t.shape], data: await t.read() });
  return out;
}

/** Write tensors (from any device) to a safetensors file atomically. */
export async function writeTensors(
  path: string,
  tensors: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>,
  opts: WriteOptions = {},
): Promise<void> {
  await writeSafetensors(path, await tensorsToData(tensors), opts);
}
