// Diagnostic: what Dawn's shader-f16 gives on this GPU once the toggle vulkan_enable_f16_on_nvidia offers it (NVIDIA
// over Vulkan withholds shader-f16 by default): the subgroup-matrix configs then offered, whether an f16 product
// on them is exact (small integers), the rate of f16 products on register-resident fragments, and the rate of
// f16 against f32 vector fma chains. One JSON line per result on stdout.
// Run on the GPU machine after scripts/device-prepare.sh:
//   WEBGPU_MODULE=$PWD/.device/app/node_modules/webgpu/index.js bash .device/enter.sh node scripts/probe-f16.mjs
const { create, globals } = await import(process.env.WEBGPU_MODULE ?? 'webgpu');
Object.assign(globalThis, globals);
const toggles = process.env.PROBE_TOGGLES ?? 'allow_unsafe_apis,vulkan_enable_f16_on_nvidia';
const gpu = create([`enable-dawn-features=${toggles}`]);
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
const out = (o) => console.log(JSON.stringify(o));
// PROBE_SMALL=1: tiny grids (checks the script on a software adapter).
const small = process.env.PROBE_SMALL === '1';
const cfgs = (adapter.info.subgroupMatrixConfigs ?? []).map((c) => {
  const o = {};
  for (const k of ['componentType', 'resultComponentType', 'M', 'N', 'K']) o[k] = c[k];
  return o;
});
const want = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'];
const features = want.filter((f) => adapter.features.has(f));
out({ what: 'adapter', toggles, features, configs: cfgs });
const device = await adapter.requestDevice({
  requiredFeatures: features,
  requiredLimits: { maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup },
});
device.addEventListener?.('uncapturederror', (e) => out({ what: 'uncaptured', message: e.error?.message }));

function buf(bytes, usage = GPUBufferUsage.STORAGE) {
  const b = device.createBuffer({ size: Math.max(16, bytes.byteLength), usage: usage | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  device.queue.writeBuffer(b, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b;
}
async function pipeline(code) {
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`);
  if (errs.length) return { errors: errs };
  device.pushErrorScope('validation');
  const p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const e = await device.popErrorScope();
  return e ? { errors: [e.message] } : { p };
}
async function run(p, buffers, groups, reps = 1) {
  const bg = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: buffers.map((buffer, i) => ({ binding: i, resource: { buffer } })) });
  const t0 = performance.now();
  const enc = device.createCommandEncoder();
  for (let r = 0; r < reps; r++) {
    const pass = enc.beginComputePass();
    pass.setPipeline(p);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(groups);
    pass.end();
  }
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}
async function readF32(b, n) {
  const r = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(b, 0, r, 0, n * 4);
  device.queue.submit([enc.finish()]);
  await r.mapAsync(GPUMapMode.READ);
  const a = new Float32Array(r.getMappedRange().slice(0));
  r.unmap();
  return a;
}
function f16bits(x) {
  // exact for the small integers used here
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const man = (u >>> 13) & 0x3ff;
  if (x === 0) return sign;
  return sign | (exp << 10) | man;
}

// Dawn's two spellings of the builtins (src/kernels/int8/subgroupMatrix.wgsl.ts): the column-major flag as an
// argument ('bool') or a template argument ('template'); both tried.
const ld = (syn, type, ptr, off, stride) =>
  syn === 'bool' ? `subgroupMatrixLoad<${type}>(${ptr}, ${off}, false, ${stride})` : `subgroupMatrixLoad<${type}, row_major>(${ptr}, ${off}, ${stride})`;
const st = (syn, ptr, off, v, stride) =>
  syn === 'bool' ? `subgroupMatrixStore(${ptr}, ${off}, ${v}, false, ${stride})` : `subgroupMatrixStore<row_major>(${ptr}, ${off}, ${v}, ${stride})`;
const hasF16 = features.includes('shader-f16');
const hasSgm = features.includes('chromium-experimental-subgroup-matrix');
const enables = `${hasF16 ? 'enable f16;' : ''}${hasSgm ? 'enable chromium_experimental_subgroup_matrix;' : ''}`;

// 1. f16 subgroup-matrix products: exactness, for each f16 config, with element and word strides.
let good = { syn: 'bool', unit: 'elements' };
if (hasF16 && hasSgm) {
  for (const c of cfgs.filter((c) => String(c.componentType).includes('16'))) {
    const { M, N, K } = c;
    const ct = c.componentType === 'f16' ? 'f16' : String(c.componentType);
    const rt = String(c.resultComponentType);
    const A = Array.from({ length: M * K }, (_, i) => ((i * 7 + 3) % 9) - 4);
    const B = Array.from({ length: K * N }, (_, i) => ((i * 5 + 1) % 7) - 3);
    const want = new Float32Array(M * N);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) { let s = 0; for (let k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j]; want[i * N + j] = s; }
    const a16 = new Uint16Array(A.map(f16bits));
    const b16 = new Uint16Array(B.map(f16bits));
    for (const [syn, unit] of [['bool', 'elements'], ['bool', 'words'], ['template', 'elements'], ['template', 'words']]) {
      const div = unit === 'elements' ? 1 : 2;
      const code = `${enables}
@group(0) @binding(0) var<storage, read> a: array<${ct}>;
@group(0) @binding(1) var<storage, read> b: array<${ct}>;
@group(0) @binding(2) var<storage, read_write> c: array<${rt}>;
@compute @workgroup_size(32) fn main() {
  let l = ${ld(syn, `subgroup_matrix_left<${ct}, ${K}, ${M}>`, '&a', '0u', `${K / div}u`)};
  let r = ${ld(syn, `subgroup_matrix_right<${ct}, ${N}, ${K}>`, '&b', '0u', `${N / div}u`)};
  let m = subgroupMatrixMultiply<${rt}>(l, r);
  ${st(syn, '&c', '0u', 'm', `${N}u`)};
}`;
      const pp = await pipeline(code);
      if (pp.errors) { out({ what: 'f16-mma-exact', config: c, syn, unit, errors: pp.errors.slice(0, 2) }); continue; }
      const bc = buf(new Float32Array(M * N));
      await run(pp.p, [buf(a16), buf(b16), bc], 1);
      let got;
      if (rt === 'f32') got = await readF32(bc, M * N);
      else { const raw = await readF32(bc, M * N / 2); got = raw; }
      let wrong = 0;
      if (rt === 'f32') for (let i = 0; i < M * N; i++) if (got[i] !== want[i]) wrong++;
      if (wrong === 0) good = { syn, unit };
      out({ what: 'f16-mma-exact', config: c, syn, unit, wrong, of: M * N, sample: Array.from(got.slice(0, 4)), want: Array.from(want.slice(0, 4)) });
    }
  }
}

// 2. Rate of f16 products on register-resident fragments: each subgroup 4 accumulators, ITERS steps.
if (hasF16 && hasSgm) {
  for (const c of cfgs.filter((c) => c.componentType === 'f16')) {
    const { M, N, K } = c;
    const rt = String(c.resultComponentType);
    const ITERS = small ? 16 : 4096, SG = 1, WG = small ? 4 : 132 * 32;
    const { syn } = good;
    const L = `subgroup_matrix_left<f16, ${K}, ${M}>`, R = `subgroup_matrix_right<f16, ${N}, ${K}>`;
    const code = `${enables}
@group(0) @binding(0) var<storage, read> a: array<f16>;
@group(0) @binding(1) var<storage, read_write> c: array<${rt}>;
@compute @workgroup_size(32) fn main(@builtin(workgroup_id) wg: vec3u) {
  let l0 = ${ld(syn, L, '&a', '0u', `${K}u`)};
  let l1 = ${ld(syn, L, '&a', `${M * K}u`, `${K}u`)};
  let r0 = ${ld(syn, R, '&a', `${2 * M * K}u`, `${N}u`)};
  let r1 = ${ld(syn, R, '&a', `${2 * M * K + K * N}u`, `${N}u`)};
  var c0 = subgroup_matrix_result<${rt}, ${N}, ${M}>();
  var c1 = subgroup_matrix_result<${rt}, ${N}, ${M}>();
  var c2 = subgroup_matrix_result<${rt}, ${N}, ${M}>();
  var c3 = subgroup_matrix_result<${rt}, ${N}, ${M}>();
  for (var i = 0u; i < ${ITERS}u; i++) {
    c0 = subgroupMatrixMultiplyAccumulate(l0, r0, c0);
    c1 = subgroupMatrixMultiplyAccumulate(l0, r1, c1);
    c2 = subgroupMatrixMultiplyAccumulate(l1, r0, c2);
    c3 = subgroupMatrixMultiplyAccumulate(l1, r1, c3);
  }
  let o = wg.x * ${4 * M * N}u;
  ${st(syn, '&c', 'o', 'c0', `${N}u`)};
  ${st(syn, '&c', `o + ${M * N}u`, 'c1', `${N}u`)};
  ${st(syn, '&c', `o + ${2 * M * N}u`, 'c2', `${N}u`)};
  ${st(syn, '&c', `o + ${3 * M * N}u`, 'c3', `${N}u`)};
}`;
    const pp = await pipeline(code);
    if (pp.errors) { out({ what: 'f16-mma-rate', config: c, errors: pp.errors.slice(0, 3) }); continue; }
    const a = buf(new Uint16Array(4 * 64 * 64).fill(f16bits(0.0009765625)));
    const cb = device.createBuffer({ size: WG * SG * 4 * M * N * 4, usage: GPUBufferUsage.STORAGE });
    await run(pp.p, [a, cb], WG);
    const ms = (await run(pp.p, [a, cb], WG, 10)) / 10;
    const flops = 2 * M * N * K * 4 * ITERS * SG * WG;
    out({ what: 'f16-mma-rate', config: c, ms, tflops: flops / (ms * 1e-3) / 1e12, note: 'wall clock around 10 dispatches' });
  }
}

// 3. f16 vs f32 fma chains in registers (8 independent vec4 chains a thread).
for (const t of hasF16 ? ['f32', 'f16'] : ['f32']) {
  const ITERS = small ? 16 : 8192, WGS = small ? 4 : 132 * 16, TH = 256;
  const code = `${enables}
@group(0) @binding(0) var<storage, read_write> o: array<vec4<${t}>>;
@compute @workgroup_size(${TH}) fn main(@builtin(global_invocation_id) g: vec3u) {
  let s = vec4<${t}>(${t}(g.x & 7u) * ${t}(0.001));
  var a0 = s; var a1 = s + ${t}(1); var a2 = s + ${t}(2); var a3 = s + ${t}(3);
  var a4 = s + ${t}(4); var a5 = s + ${t}(5); var a6 = s + ${t}(6); var a7 = s + ${t}(7);
  let m = vec4<${t}>(${t}(0.999));
  let k = vec4<${t}>(${t}(0.001));
  for (var i = 0u; i < ${ITERS}u; i++) {
    a0 = fma(a0, m, k); a1 = fma(a1, m, k); a2 = fma(a2, m, k); a3 = fma(a3, m, k);
    a4 = fma(a4, m, k); a5 = fma(a5, m, k); a6 = fma(a6, m, k); a7 = fma(a7, m, k);
  }
  o[g.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}`;
  const pp = await pipeline(code);
  if (pp.errors) { out({ what: 'fma-rate', type: t, errors: pp.errors }); continue; }
  const ob = device.createBuffer({ size: WGS * TH * 16, usage: GPUBufferUsage.STORAGE });
  await run(pp.p, [ob], WGS);
  const ms = (await run(pp.p, [ob], WGS, 10)) / 10;
  const flops = 2 * 4 * 8 * ITERS * WGS * TH;
  out({ what: 'fma-rate', type: t, ms, tflops: flops / (ms * 1e-3) / 1e12, note: 'wall clock around 10 dispatches' });
}
out({ what: 'done' });
