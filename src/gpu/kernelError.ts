/**
 * WebGPU reports shader and validation problems asynchronously through error scopes. These classes
 * carry what a user needs to find the problem: the kernel's name and the WGSL line.
 */
export class KernelError extends Error {
  override name = 'KernelError';
  constructor(
    readonly kernel: string,
    readonly detail: string,
    readonly wgslLine?: number,
    readonly wgslSource?: string,
  ) {
    super(KernelError.format(kernel, detail, wgslLine, wgslSource));
  }

  private static format(kernel: string, detail: string, line?: number, src?: string): string {
    let msg = `kernel '${kernel}': ${detail}`;
    if (line !== undefined) {
      msg += ` (WGSL line ${line})`;
      const text = src?.split('\n')[line - 1];
      if (text !== undefined) msg += `\n  ${line} | ${text.trim()}`;
    }
    return msg;
  }
}

export class GpuOutOfMemoryError extends Error {
  override name = 'GpuOutOfMemoryError';
}
