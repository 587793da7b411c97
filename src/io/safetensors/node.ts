/** Node file access for safetensors: a ByteSource over a FileHandle (positioned reads, nothing else). */
import { open, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Checkpoint, type CheckpointStore } from './checkpoint.js';
import { SafetensorsError } from './errors.js';
import { SafetensorsFile } from './file.js';
import type { ByteSource } from './source.js';

export async function fileSource(path: string): Promise<ByteSource> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SafetensorsError(code === 'ENOENT' ? 'file not found' : `cannot open (${(e as Error).message})`, path);
  }
  const { size } = await fh.stat();
  return {
    name: path,
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      const len = Math.max(0, Math.min(length, size - offset));
      const buf = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === len ? buf : buf.subarray(0, got);
    },
    async close(): Promise<void> {
      await fh.close();
    },
  };
}

/** Open a safetensors file from disk, reading only its header. Close it when done. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const src = await fileSource(path);
  try {
    return await SafetensorsFile.open(src);
  } catch (e) {
    await src.close?.();
    throw e;
  }
}

export async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** A checkpoint directory on disk. */
export function directoryStore(dir: string): CheckpointStore {
  return {
    name: dir,
    async readText(file: string): Promise<string | undefined> {
      return readFile(join(dir, file), 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw new SafetensorsError(`cannot read (${e.message})`, join(dir, file));
      });
    },
    async open(file: string): Promise<ByteSource | undefined> {
      if (!(await isFile(join(dir, file)))) return undefined;
      return fileSource(join(dir, file));
    },
  };
}

/** A checkpoint from a directory (index + shards, or model.safetensors) or a single .safetensors file. */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  if (await isFile(path)) return Checkpoint.fromFile(await openSafetensors(path), basename(path), dirname(path));
  const s = await stat(path).catch(() => undefined);
  if (!s?.isDirectory()) throw new SafetensorsError('no such file or directory', path);
  return Checkpoint.fromStore(directoryStore(path));
}
