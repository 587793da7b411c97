// Diagnostic for the GPU machine: how many 1 GiB storage buffers Dawn/Vulkan lets us allocate (and touch).
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const a = await gpu.requestAdapter();
const d = await a.requestDevice({ requiredLimits: { maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize } });
const bufs = [];
for (let i = 0; i < 200; i++) {
  d.pushErrorScope('out-of-memory');
  const b = d.createBuffer({ size: 2 ** 30, usage: 0x80 | 0x08 });
  const enc = d.createCommandEncoder();
  enc.clearBuffer(b);
  d.queue.submit([enc.finish()]);
  const err = await d.popErrorScope();
  if (err) { console.log(`failed at buffer ${i}: ${err.message.split('\n')[0]}`); break; }
  bufs.push(b);
}
await d.queue.onSubmittedWorkDone();
console.log(`allocated ${bufs.length} GiB`);
process.exit(0);
