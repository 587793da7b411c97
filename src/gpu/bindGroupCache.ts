/**
 * Bind groups reused across dispatches that bind the same buffers at the same offsets.
 *
 * Creating a bind group is the largest host cost of a dispatch in Dawn (~16-20 us measured on lavapipe,
 * against ~1 us each for setPipeline, setBindGroup and dispatchWorkgroups). A decode or training step
 * repeats the same sequence of dispatches every time, the buffer pool hands buffers out by id (lowest
 * free first, see bufferPool.ts) and the uniform ring hands out the same offsets, so from the first few
 * steps on almost every bind group of a step already exists. The key is the kernel's layout plus, per
 * binding, a buffer id, offset and size: the resources a bind group captures, nothing else.
 *
 * The key is a row of numbers the caller fills into a reused Float64Array (no strings, no objects per
 * dispatch); it is hashed to a 32-bit number and the few rows that share a hash are compared in full.
 *
 * A bind group naming a destroyed buffer is never used again: buffer ids are never reused, so its key
 * cannot recur. The cache therefore survives the pool destroying single buffers past its free-byte cap
 * (clearing it there made every step that crossed the cap re-create all of its bind groups); it is
 * dropped on pool trims (releasing the stale ones) and bounded, cleared when full, so shapes that change
 * every step cannot grow it without limit.
 */
interface Entry {
  key: Float64Array;
  group: GPUBindGroup;
}

export class BindGroupCache {
  private readonly groups = new Map<number, Entry[]>();
  private readonly layoutIds = new WeakMap<GPUBindGroupLayout, number>();
  private nextLayoutId = 1;
  private count = 0;
  hits = 0;
  misses = 0;

  constructor(
    /** Entries kept before the cache is cleared. */
    private readonly capacity = 16384,
  ) {}

  get size(): number {
    return this.count;
  }

  /** A small number naming the layout, the first number of a key. */
  layoutId(layout: GPUBindGroupLayout): number {
    let id = this.layoutIds.get(layout);
    if (id === undefined) {
      id = this.nextLayoutId++;
      this.layoutIds.set(layout, id);
    }
    return id;
  }

  /**
   * The bind group cached under key[0..n), or the one `make` creates (then cached). The key is copied
   * on a miss, so the caller may reuse its array.
   */
  get(key: Float64Array, n: number, make: () => GPUBindGroup): GPUBindGroup {
    const h = hashKey(key, n);
    const bucket = this.groups.get(h);
    if (bucket) {
      for (const e of bucket) {
        if (sameKey(e.key, key, n)) {
          this.hits++;
          return e.group;
        }
      }
    }
    this.misses++;
    if (this.count >= this.capacity) this.clear();
    const group = make();
    const entry = { key: key.slice(0, n), group };
    const list = this.groups.get(h);
    if (list) list.push(entry);
    else this.groups.set(h, [entry]);
    this.count++;
    return group;
  }

  /** Forget every bind group (a buffer they may name is about to be destroyed). */
  clear(): void {
    this.groups.clear();
    this.count = 0;
  }
}

/** FNV-1a style mixing of the key's numbers (each split into its low and high 32 bits). */
export function hashKey(key: Float64Array, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) {
    const v = key[i];
    h = Math.imul(h ^ (v >>> 0), 0x01000193);
    h = Math.imul(h ^ ((v / 4294967296) >>> 0), 0x01000193);
  }
  return h;
}

function sameKey(a: Float64Array, b: Float64Array, n: number): boolean {
  if (a.length !== n) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
