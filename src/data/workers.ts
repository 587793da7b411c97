/**
 * Worker threads that run from both the compiled package (dist/*.js) and the sources (tsx, vitest): from
 * sources, the worker first registers tsx's loader, resolved from this file (not from the cwd).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** Starts the worker module `name` (a sibling of this file, without extension). */
export function spawnWorker(name: string, workerData: unknown): Worker {
  const self = import.meta.url;
  const ts = self.endsWith('.ts');
  const url = new URL(`./${name}.${ts ? 'ts' : 'js'}`, self).href;
  if (!ts) return new Worker(new URL(url), { workerData });
  const tsxDir = dirname(createRequire(self).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * A pool of identical workers answering {id, ...task} with {id, ...result}; tasks go round-robin and each
 * call resolves with its own answer, so the caller can keep results in submission order.
 */
export class WorkerPool<T, R> {
  private workers: Worker[];
  private next = 0;
  private seq = 0;
  private pending = new Map<number, { resolve: (r: R) => void; reject: (e: Error) => void }>();

  constructor(name: string, n: number, workerData: unknown) {
    this.workers = Array.from({ length: n }, () => {
      const w = spawnWorker(name, workerData);
      w.on('message', (m: { id: number; error?: string; result?: R }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.result as R);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      return w;
    });
  }

  run(task: T, transfer: ArrayBuffer[] = []): Promise<R> {
    const id = this.seq++;
    const w = this.workers[this.next];
    this.next = (this.next + 1) % this.workers.length;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, task }, transfer as never);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
