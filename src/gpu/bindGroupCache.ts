/**
 * Bind groups reused across dispatches that bind the same buffers at the same offsets.
 *
 * Creating a bind group is the largest host cost of a dispatch in Dawn (~16-20 us measured on lavapipe,
 * against ~1 us each for setPipeline, setBindGroup and dispatchWorkgroups). A decode or training step
 * repeats the same sequence of dispatches every time, and the buffer pool hands the same buffers back
 * in the same order, and the uniform ring hands out the same offsets, so from the second step on almost
 * every bind group of a step already exists. The key is the kernel's layout plus, per binding, a buffer
 * id, offset and size: the resources a bind group captures, nothing else.
 *
 * A bind group must never outlive a buffer it names: the pool reports every buffer it destroys and the
 * whole cache is dropped then (destroys are rare: pool trims and memory-pressure releases). The cache is
 * also bounded, and cleared when full, so shapes that change every step cannot grow it without limit.
 */
export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private readonly layoutIds = new WeakMap<GPUBindGroupLayout, number>();
  private nextId = 1;
  hits = 0;
  misses = 0;

  constructor(
    private readonly device: GPUDevice,
    /** Entries kept before the cache is cleared. */
    private readonly capacity = 16384,
  ) {}

  get size(): number {
    return this.groups.size;
  }

  get(layout: GPUBindGroupLayout, entries: GPUBindGroupEntry[], label: string): GPUBindGroup {
    let key = `${this.idOf(this.layoutIds, layout)}`;
    for (const e of entries) {
      const r = e.resource as GPUBufferBinding;
      key += `|${e.binding}:${this.idOf(this.bufferIds, r.buffer)}@${r.offset ?? 0}+${r.size ?? -1}`;
    }
    const hit = this.groups.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    if (this.groups.size >= this.capacity) this.groups.clear();
    const group = this.device.createBindGroup({ layout, entries, label });
    this.groups.set(key, group);
    return group;
  }

  /** Forget every bind group (a buffer they may name is about to be destroyed). */
  clear(): void {
    this.groups.clear();
  }

  private idOf<T extends object>(ids: WeakMap<T, number>, o: T): number {
    let id = ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      ids.set(o, id);
    }
    return id;
  }
}
