/** Worker for the per-record pipeline work (see RecordWork in pipeline.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { RecordWork, type WorkSpec } from './pipeline.js';

const work = await RecordWork.create(workerData as WorkSpec);
parentPort!.on('message', (m: { id: number; task: string[][] }) => {
  try {
    parentPort!.postMessage({ id: m.id, result: work.run(m.task) });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
