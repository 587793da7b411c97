// Diagnostic: what Dawn's int8 subgroup-matrix builtins load and compute on this GPU, for several offsets
// and strides of the left and right operands (products stored as i32, one JSON line per kernel on stdout).
// Found on the H200 with npm webgpu 0.6.2 (bench/results/2026-12-01-h200-subgroup-matrix-probe.jsonl): int8
// offsets and strides count 32-bit words, not elements. src/kernels/int8 now checks this itself.
// Run on the GPU machine after scripts/device-prepare.sh:
//   WEBGPU_MODULE=$PWD/.device/app/node_modules/webgpu/index.js bash .device/enter.sh node scripts/probe-subgroup-matrix.mjs
// PROBE_ONLY=<regex> picks kernels; PROBE_FAKE=1 runs plain kernels instead (checks the harness anywhere).
const { create, globals } = await import(process.env.WEBGPU_MODULE ?? 'webgpu');
Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis']);
const adapter = await gpu.requestAdapter();
const cfgs = (adapter.info.subgroupMatrixConfigs ?? []).map((c) => {
  const o = {};
  for (const k of ['componentType', 'resultComponentType', 'M', 'N', 'K']) o[k] = c[k];
  return o;
});
const FAKE = process.env.PROBE_FAKE === '1';
const device = await adapter.requestDevice({ requiredFeatures: FAKE ? [] : ['chromium-experimental-subgroup-matrix', 'subgroups'] });
const bgl = device.createBindGroupLayout({ entries: [
  { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
  { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
  { binding: 2, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
] });
const layout = device.createPipelineLayout({ bindGroupLayouts: [bgl] });
const M = 32, N = 64, K = 64;
let seed = 7;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return ((seed >>> 16) % 256) - 128; };
const A = Int8Array.from({ length: M * K }, rnd);
const B = Int8Array.from({ length: N * K }, rnd);
function buf(data, usage) {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  return b;
}
const bA = buf(A, GPUBufferUsage.STORAGE), bB = buf(B, GPUBufferUsage.STORAGE);
const out = device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
const read = device.createBuffer({ size: 4096, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const head = `${FAKE ? '' : 'enable chromium_experimental_subgroup_matrix;'}
@group(0) @binding(0) var<storage, read> a: array<i32>;
@group(0) @binding(1) var<storage, read> b: array<i32>;
@group(0) @binding(2) var<storage, read_write> c: array<i32>;
var<workgroup> wa: array<i32, 128>;
@compute @workgroup_size(32) fn main() {
`;
const bodies = {};
// Left loads with several (offset, stride), multiplied by a right operand loaded as in the first probe
// (offset 0, stride given in words: 16 -> 64 bytes = one row of B); the i32 result is stored plainly.
const rightOk = `subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>, col_major>(&b, 0u, 16u)`;
for (const [off, stride] of [[0, 64], [0, 16], [0, 128], [4, 64], [64, 64], [256, 64], [128, 16]]) {
  bodies[`left_o${off}_s${stride}`] = `let l = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>, row_major>(&a, ${off}u, ${stride}u);
  let r = ${rightOk};
  let m = subgroupMatrixMultiply<i32>(l, r);
  subgroupMatrixStore<row_major>(&c, 0u, m, 16u);`;
}
const leftDefault = `subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>, row_major>(&a, 0u, 64u)`;
for (const [off, stride] of [[0, 16], [4, 16], [64, 16], [256, 16], [0, 64]]) {
  bodies[`right_o${off}_s${stride}`] = `let l = ${leftDefault};
  let r = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>, col_major>(&b, ${off}u, ${stride}u);
  let m = subgroupMatrixMultiply<i32>(l, r);
  subgroupMatrixStore<row_major>(&c, 0u, m, 16u);`;
}
// Workgroup-memory staging: copy A's first 16 rows x 32 bytes into a tight workgroup array, load from there.
bodies['left_workgroup'] = `for (var i = 0u; i < 128u; i++) { wa[i] = a[(i / 8u) * 16u + (i % 8u)]; }
  workgroupBarrier();
  let l = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>, row_major>(&wa, 0u, 32u);
  let r = ${rightOk};
  let m = subgroupMatrixMultiply<i32>(l, r);
  subgroupMatrixStore<row_major>(&c, 0u, m, 16u);`;

const res = { configs: cfgs, M, N, K, A: [...A], B: [...B], outputs: {}, errors: {} };
const only = process.env.PROBE_ONLY ? new RegExp(process.env.PROBE_ONLY) : undefined;
console.log(JSON.stringify({ configs: cfgs, M, N, K, A: [...A], B: [...B] }));
for (const [name, body0] of Object.entries(bodies)) {
  if (only && !only.test(name)) continue;
  console.error('kernel', name);
  const body = FAKE ? 'c[0] = a[0] + b[0];' : body0;
  const code = head + body + '\n}\n';
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`);
  if (errs.length) { console.log(JSON.stringify({ name, errors: errs })); continue; }
  device.pushErrorScope('validation');
  const pipe = device.createComputePipeline({ layout, compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: bgl, entries: [bA, bB, out].map((buffer, i) => ({ binding: i, resource: { buffer } })) });
  const enc = device.createCommandEncoder();
  enc.clearBuffer(out);
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(1); pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, 4096);
  device.queue.submit([enc.finish()]);
  const e = await device.popErrorScope();
  if (e) { console.log(JSON.stringify({ name, errors: [e.message] })); continue; }
  await read.mapAsync(GPUMapMode.READ);
  console.log(JSON.stringify({ name, output: [...new Int32Array(read.getMappedRange().slice(0))] }));
  read.unmap();
}
console.error('done');
