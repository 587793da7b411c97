/**
 * Uniform parameter blocks. Kernels declare a struct of 4-byte scalars (u32, i32, f32) in the order they
 * are pushed here; the block is padded to 16 bytes as WGSL's uniform layout requires.
 */
export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ('u' | 'i' | 'f')[] = [];

  u32(...values: number[]): this {
    for (const v of values) {
      this.words.push(v >>> 0);
      this.kinds.push('u');
    }
    return this;
  }

  i32(...values: number[]): this {
    for (const v of values) {
      this.words.push(v | 0);
      this.kinds.push('i');
    }
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) {
      this.words.push(v);
      this.kinds.push('f');
    }
    return this;
  }

  get byteLength(): number {
    return Math.max(16, Math.ceil((this.words.length * 4) / 16) * 16);
  }

  writeTo(view: DataView, byteOffset: number): void {
    for (let i = 0; i < this.words.length; i++) {
      const o = byteOffset + i * 4;
      const k = this.kinds[i];
      if (k === 'f') view.setFloat32(o, this.words[i], true);
      else if (k === 'i') view.setInt32(o, this.words[i], true);
      else view.setUint32(o, this.words[i], true);
    }
  }
}
