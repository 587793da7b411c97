/** Prefetch worker: builds batches ahead of the training loop and transfers their buffers (no copies). */
import { parentPort, workerData } from 'node:worker_threads';
import { BatchCursor, type LoaderConfig, StageData } from './loaderCore.js';

const { cfg, start } = workerData as { cfg: LoaderConfig; start: { epoch: number; step: number } };
const data = new StageData(cfg.dataset, cfg.stage);
const cursor = new BatchCursor(data, cfg, start);
parentPort!.on('message', (msg: { credit?: number; stop?: boolean }) => {
  if (msg.stop) {
    data.reader.close();
    process.exit(0);
  }
  for (let i = 0; i < (msg.credit ?? 0); i++) {
    try {
      const b = cursor.next();
      parentPort!.postMessage({ batch: b }, [
        b.tokens.buffer,
        b.cuSeqlens.buffer,
        b.docIds.buffer,
        b.samples.buffer,
      ] as never);
    } catch (e) {
      parentPort!.postMessage({ error: (e as Error).message });
      return;
    }
  }
});
