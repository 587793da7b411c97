/**
 * Uniform parameter blocks. Kernels declare a struct of 4-byte scalars (u32, i32, f32) in the order they
 * are pushed here; the block is padded to 16 bytes as WGSL's uniform layout requires.
 *
 * Every dispatch makes one (a decode step ~330), so the words go straight into a small Uint32Array as
 * their bit patterns (f32 through a Float32Array over the same memory) and `writeTo` is one typed-array
 * copy into the uniform ring, instead of a list of numbers and kinds converted one DataView call each.
 */
const f32Scratch = new Float32Array(1);
const u32OfF32 = new Uint32Array(f32Scratch.buffer);

export class Params {
  private words = new Uint32Array(8);
  private n = 0;

  private push(bits: number): void {
    if (this.n === this.words.length) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
    }
    this.words[this.n++] = bits;
  }

  u32(...values: number[]): this {
    for (const v of values) this.push(v >>> 0);
    return this;
  }

  i32(...values: number[]): this {
    // Two's complement: the same bits as an i32 store.
    for (const v of values) this.push((v | 0) >>> 0);
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) {
      f32Scratch[0] = v;
      this.push(u32OfF32[0]);
    }
    return this;
  }

  get byteLength(): number {
    return Math.max(16, Math.ceil((this.n * 4) / 16) * 16);
  }

  /** Write the block's words at `wordOffset` of `target`; the padding is left as it is. */
  writeTo(target: Uint32Array, wordOffset: number): void {
    if (this.n <= 4) {
      for (let i = 0; i < this.n; i++) target[wordOffset + i] = this.words[i];
    } else target.set(this.words.subarray(0, this.n), wordOffset);
  }
}
