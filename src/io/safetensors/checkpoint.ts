/**
 * A checkpoint: one `model.safetensors`, or shards listed by `model.safetensors.index.json`
 * (`{ metadata?, weight_map: { tensor name: shard file } }`, the Hugging Face layout). Opening reads every
 * shard's header (names, shapes, dtypes) and checks the index against the shards; tensors load lazily.
 * File access goes through a CheckpointStore so a browser can serve the same files over fetch.
 */
import type { Tensor, Device } from '../../tensor/tensor.js';
import { numel } from '../../tensor/shape.js';
import type { SafetensorsDType } from './dtypes.js';
import { SafetensorsError } from './errors.js';
import { type LoadOptions, SafetensorsFile } from './file.js';
import type { ByteSource } from './source.js';

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

/** Files of one checkpoint directory, by name relative to it. */
export interface CheckpointStore {
  /** The directory, for messages. */
  readonly name: string;
  /** A file's text, or undefined when it does not exist. */
  readText(file: string): Promise<string | undefined>;
  /** A byte source, or undefined when the file does not exist. */
  open(file: string): Promise<ByteSource | undefined>;
}

export interface CheckpointTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** The shard (relative to the checkpoint directory) that holds it. */
  file: string;
}

export class Checkpoint {
  private constructor(
    readonly name: string,
    private readonly shards: ReadonlyMap<string, SafetensorsFile>,
    private readonly where: ReadonlyMap<string, string>,
    /** `metadata` of the index file, or the single file's `__metadata__`. */
    readonly metadata: Readonly<Record<string, unknown>> | undefined,
  ) {}

  static async fromStore(store: CheckpointStore): Promise<Checkpoint> {
    const indexText = await store.readText(INDEX_FILE);
    if (indexText === undefined) {
      const src = await store.open(SINGLE_FILE);
      if (!src) {
        throw new SafetensorsError(`no ${INDEX_FILE} or ${SINGLE_FILE}; expected one of them`, store.name);
      }
      const file = await SafetensorsFile.open(src).catch(async (e) => {
        await src.close?.();
        throw e;
      });
      return Checkpoint.fromFile(file, SINGLE_FILE, store.name);
    }
    const indexName = `${store.name}/${INDEX_FILE}`;
    const { weightMap, metadata } = parseIndex(indexText, indexName);
    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const shard of new Set(weightMap.values())) {
        const src = await store.open(shard);
        if (!src) {
          const example = [...weightMap].find(([, f]) => f === shard)?.[0];
          throw new SafetensorsError(
            `weight_map names shard '${shard}' (e.g. for tensor '${example}') but the file does not exist`,
            indexName,
          );
        }
        shards.set(
          shard,
          await SafetensorsFile.open(src).catch(async (e) => {
            await src.close?.();
            throw e;
          }),
        );
      }
      for (const [tensor, shard] of weightMap) {
        if (!shards.get(shard)?.has(tensor)) {
          throw new SafetensorsError(
            `listed in ${INDEX_FILE} as stored in '${shard}', but that shard has no such tensor`,
            `${store.name}/${shard}`,
            tensor,
          );
        }
      }
    } catch (e) {
      for (const f of shards.values()) await f.close();
      throw e;
    }
    return new Checkpoint(store.name, shards, weightMap, metadata);
  }

  /** A one-file checkpoint (`fileName` is how the file is reported, `name` the directory). */
  static fromFile(file: SafetensorsFile, fileName: string, name: string): Checkpoint {
    const where = new Map(file.names.map((n) => [n, fileName]));
    return new Checkpoint(name, new Map([[fileName, file]]), where, file.metadata);
  }

  /** Tensor names in index (or file) order. */
  get names(): string[] {
    return [...this.where.keys()];
  }

  get files(): string[] {
    return [...this.shards.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  private shardOf(name: string): SafetensorsFile {
    const shard = this.where.get(name);
    if (shard === undefined) throw new SafetensorsError('no such tensor in the checkpoint', this.name, name);
    return this.shards.get(shard)!;
  }

  info(name: string): CheckpointTensor {
    const t = this.shardOf(name).info(name);
    return { name, dtype: t.dtype, shape: t.shape, file: this.where.get(name)! };
  }

  /** Every tensor's name, dtype, shape and shard. */
  tensors(): CheckpointTensor[] {
    return this.names.map((n) => this.info(n));
  }

  /** Sum of numel over the tensors the checkpoint lists. */
  get parameterCount(): number {
    let n = 0;
    for (const name of this.where.keys()) n += numel(this.shardOf(name).info(name).shape);
    return n;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readRaw(name);
  }

  async loadTensor(name: string, device: Device, opts: LoadOptions = {}): Promise<Tensor> {
    return this.shardOf(name).loadTensor(name, device, opts);
  }

  async close(): Promise<void> {
    for (const f of this.shards.values()) await f.close();
  }
}

function parseIndex(
  text: string,
  file: string,
): { weightMap: Map<string, string>; metadata: Record<string, unknown> | undefined } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`not valid JSON (${(e as Error).message})`, file);
  }
  const obj = json as { weight_map?: unknown; metadata?: unknown } | null;
  const wm = obj?.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new SafetensorsError(
      `weight_map is ${JSON.stringify(wm)}, expected an object {tensor name: shard file}`,
      file,
    );
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string' || shard === '' || shard.startsWith('/') || shard.split(/[\\/]/).includes('..')) {
      throw new SafetensorsError(
        `weight_map entry is ${JSON.stringify(shard)}, expected a shard file name inside the checkpoint directory`,
        file,
        tensor,
      );
    }
    weightMap.set(tensor, shard);
  }
  const md = obj?.metadata;
  return { weightMap, metadata: md && typeof md === 'object' ? (md as Record<string, unknown>) : undefined };
}
