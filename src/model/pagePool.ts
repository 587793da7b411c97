/**
 * Fixed-size pages of the MLA latent cache, handed out to sequences as they grow. A free list keeps
 * allocation O(pages) and lets sequences of very different lengths share one pool (no per-sequence
 * reservation of the maximum length). Pages are returned when a sequence ends.
 */
export class OutOfPagesError extends Error {
  override name = 'OutOfPagesError';
}

export class PagePool {
  private readonly free: number[];

  constructor(readonly numPages: number) {
    // Hand out low page numbers first (stack popped from the end).
    this.free = Array.from({ length: numPages }, (_, i) => numPages - 1 - i);
  }

  get available(): number {
    return this.free.length;
  }

  alloc(n: number): number[] {
    if (n > this.free.length) {
      throw new OutOfPagesError(
        `cache pool exhausted: ${n} pages wanted, ${this.free.length} of ${this.numPages} free`,
      );
    }
    return this.free.splice(this.free.length - n, n).reverse();
  }

  release(pages: readonly number[]): void {
    for (let i = pages.length - 1; i >= 0; i--) this.free.push(pages[i]);
  }
}
