/** Shape arithmetic shared by tensors, ops and checkpoint I/O. */
export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function shapeEquals(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** Resolve one -1 entry of a reshape target. */
export function inferShape(target: Shape, total: number): number[] {
  const out = [...target];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const rest = numel(out.filter((_, i) => i !== neg));
    if (rest === 0 || total % rest !== 0)
      throw new ShapeError(`cannot reshape ${total} elements to ${formatShape(target)}`);
    out[neg] = total / rest;
  }
  if (numel(out) !== total) throw new ShapeError(`cannot reshape ${total} elements to ${formatShape(target)}`);
  return out;
}
