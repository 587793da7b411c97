/**
 * Explicit lifetimes. GPU memory is not garbage collected, so every tensor is either disposed by hand or
 * created inside `scope(fn)`, which disposes everything made in it except what `fn` returns (or `keep`s).
 */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const stack: Set<Disposable>[] = [];

export function track<T extends Disposable>(t: T): T {
  stack[stack.length - 1]?.add(t);
  return t;
}

/** Exclude a tensor from the current scope (it then outlives the scope and must be disposed by hand). */
export function keep<T extends Disposable>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('dispose' in value && 'isDisposed' in value) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, out, depth + 1);
}

function exit(frame: Set<Disposable>, result: unknown): void {
  const kept = new Set<unknown>();
  collect(result, kept);
  stack.pop();
  const parent = stack[stack.length - 1];
  for (const t of frame) {
    if (kept.has(t)) parent?.add(t);
    else if (!t.isDisposed) t.dispose();
  }
}

/** Run `fn`; dispose every tensor it created that is not part of its (possibly async) result. */
export function scope<R>(fn: () => R): R {
  const frame = new Set<Disposable>();
  stack.push(frame);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    exit(frame, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    throw new Error('scope() takes a synchronous function; use scopeAsync() for async work');
  }
  exit(frame, result);
  return result;
}

/**
 * Async variant. Tensors created by other async work running concurrently would land in this frame
 * too, so use it for sequential code (a benchmark, a generation loop), not inside concurrent tasks.
 */
export async function scopeAsync<R>(fn: () => Promise<R>): Promise<R> {
  const frame = new Set<Disposable>();
  stack.push(frame);
  try {
    const result = await fn();
    exit(frame, result);
    return result;
  } catch (e) {
    exit(frame, undefined);
    throw e;
  }
}
