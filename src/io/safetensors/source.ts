/**
 * Where file bytes come from. Parsing and decoding only need positioned reads, so the same code serves a
 * Node file handle (src/io/safetensors/node.ts), an in-memory ArrayBuffer, or (in a browser) HTTP range
 * requests behind this interface.
 */
export interface ByteSource {
  /** A name for messages: the path or URL. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `offset` (fewer only if the source ends first). */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** A source over bytes already in memory (a fetched file, a test buffer); reads return copies. */
export function bufferSource(bytes: ArrayBuffer | Uint8Array, name = '<buffer>'): ByteSource {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: u8.byteLength,
    async read(offset: number, length: number): Promise<Uint8Array> {
      return u8.slice(offset, Math.min(u8.byteLength, offset + length));
    },
  };
}
