/**
 * Register-tiled form of the grouped expert row matmuls (grouped.wgsl.ts for the forward, rowsWgsl in
 * backward.wgsl.ts for the backward): the same tiles of the plan (one expert's rows per 32-row tile),
 * the same bindings and outputs, for f32 weights whose two matrix dimensions are multiples of 4.
 *
 * Workgroup (t, nb): rows [r0, r1) of tile t times expert e's weight, columns [nb*64, nb*64 + 64). Its 128
 * threads each own a 4 x 4 block (rows ty*4.., columns tx*4..), kept as vec4 accumulators. Per step of 16
 * along K the tile of A is staged k-major (As[k][row]) and the weight tile as Bs[k][col], both read as
 * vec4 in the inner loop: 2 workgroup loads (3 with two weights) per 16 (32) FMAs, where the scalar
 * kernels (2 x 4 per thread of 256) issued 6 (10) loads per 8 (16) FMAs. Global loads are vec4 too: A
 * along K (a row gathered through perm where the rows are tokens), the weight along its contiguous axis.
 *
 * Forms (mode):
 *   fwdGateUp  H = silu(x W1_e^T) * (x W3_e^T)     A gathered, W [E, N, K] twice, SwiGLU epilogue
 *   fwdDown    Y = H W2_e^T                         W [E, N, K]
 *   gateUp     a = x W1_e^T, b = x W3_e^T          A gathered, W [E, N, K] twice, two outputs
 *   dh         g = dy W2_e                          A gathered, W [E, K, N]
 *   dx         dxp = da W1_e + db W3_e              two A, W [E, K, N] twice, summed
 */
import { expertTileStart } from './plan.wgsl.js';

export const ROWS_TILED_BM = 32;
export const ROWS_TILED_BN = 64;
const BK = 16;

/**
 * Rows per thread: 4 (128 threads, 4 x 4 each: 16 FMAs per 2 workgroup loads, the first form) or 8 (64
 * threads, 8 x 4 each: two vec4 rows of A against one of the weight, 32 FMAs per 3 loads). The tile (32 x
 * 64 of one expert, the plan's) and the results are the same; only the work per thread differs. 'mode'
 * (default) takes 8 for the one-weight forms and 4 for the two-weight ones, as measured on the H200 (hybrid
 * step, 11 MoE layers): fwdDown 1.78 -> 1.64 ms, dh 1.50 -> 1.42 with 8, but fwdGateUp 3.01 -> 3.43, gateUp
 * 3.09 -> 3.57, dx 3.03 -> 3.23 (twice the accumulators or A loads per thread cost more than they save).
 */
let threadRows: 4 | 8 | 'mode' = 'mode';
export function setMoeRowsThreadRows(n: 4 | 8 | 'mode'): void {
  threadRows = n;
}

function rowsPerThread(mode: RowsTiledMode): 4 | 8 {
  if (threadRows !== 'mode') return threadRows;
  return mode === 'fwdDown' || mode === 'dh' ? 8 : 4;
}

export type RowsTiledMode = 'fwdGateUp' | 'fwdDown' | 'gateUp' | 'dh' | 'dx';

let enabled = true;
/** Benchmarks and tests: false sends every grouped row matmul to the scalar kernels. */
export function setMoeRowsTiled(on: boolean): void {
  enabled = on;
}

/** Whether the new expert kernels are on (the split outer products of outerSplit.wgsl.ts follow it too). */
export function moeRowsTiledEnabled(): boolean {
  return enabled;
}

/** Whether the tiled form applies: f32 weights, K and N (the weight's two dims) multiples of 4. */
export function rowsTiledFits(Kin: number, Nout: number, wDtype: string): boolean {
  return enabled && wDtype === 'f32' && Kin % 4 === 0 && Nout % 4 === 0;
}

export function rowsTiledKey(mode: RowsTiledMode): string {
  const tm = rowsPerThread(mode);
  return `moe_rows_tiled_${mode}${tm === 4 ? '' : `_tm${tm}`}`;
}

export function rowsTiledWgsl(mode: RowsTiledMode): string {
  const TM = rowsPerThread(mode);
  // Thread (ty, tx): tx = 16 column groups of 4; ty = TY row groups, each thread TM / 4 vec4 rows TY * 4 apart.
  const TY = ROWS_TILED_BM / TM;
  const WG = TY * 16;
  const GM = TM / 4;
  const gather = mode === 'fwdGateUp' || mode === 'gateUp' || mode === 'dh';
  const twoA = mode === 'dx';
  const twoW = mode === 'fwdGateUp' || mode === 'gateUp' || mode === 'dx';
  const twoOut = mode === 'gateUp';
  // Weight element (n, k) of expert e: [E, N, K] (k contiguous) or [E, K, N] (n contiguous).
  const nk = mode === 'fwdGateUp' || mode === 'fwdDown' || mode === 'gateUp';
  const names = ['A1', ...(twoA ? ['A2'] : []), ...(gather ? ['perm'] : []), 'tiles', 'tileCount', 'W1'];
  if (twoW) names.push('W2');
  const type = (n: string) => (/^(perm|tiles|tileCount)$/.test(n) ? 'array<u32>' : 'array<vec4<f32>>');
  const decl = names.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n}: ${type(n)};`);
  decl.push(`@group(0) @binding(${names.length + 1}) var<storage, read_write> Out1: array<f32>;`);
  if (twoOut) decl.push(`@group(0) @binding(${names.length + 2}) var<storage, read_write> Out2: array<f32>;`);
  const ws = twoW ? [1, 2] : [1];

  // Weight tile: 16 x 64 values = 256 vec4, 256 / WG per thread.
  const loadW: string[] = [];
  for (let j = 0; j < (BK * ROWS_TILED_BN) / 4 / WG; j++) {
    const i = `(lid + ${j * WG}u)`;
    if (nk) {
      // vec4 along k of column n; scattered into Bs[k][n].
      loadW.push(`{ let n = col0 + ${i} / 4u; let kq = (${i} % 4u) * 4u; let kk = k0 + kq;`);
      loadW.push(`  let inb = n < p.Nout && kk < p.Kin; let at = select(0u, (wBase + n * p.Kin + kk) / 4u, inb);`);
      for (const w of ws) {
        loadW.push(`  { let v = select(vec4<f32>(0.0), W${w}[at], inb);`);
        for (let c = 0; c < 4; c++) {
          loadW.push(`    { let q = (kq + ${c}u) * ${ROWS_TILED_BN}u + n - col0; BsV${w}[q / 4u][q % 4u] = v[${c}]; }`);
        }
        loadW.push('  }');
      }
      loadW.push('}');
    } else {
      // vec4 along n of row k; stored whole into Bs[k][n..n+3].
      loadW.push(`{ let kq = ${i} / 16u; let nq = (${i} % 16u) * 4u; let kk = k0 + kq; let n = col0 + nq;`);
      loadW.push(`  let inb = n < p.Nout && kk < p.Kin; let at = select(0u, (wBase + kk * p.Nout + n) / 4u, inb);`);
      for (const w of ws) {
        loadW.push(`  BsV${w}[(kq * ${ROWS_TILED_BN}u + nq) / 4u] = select(vec4<f32>(0.0), W${w}[at], inb);`);
      }
      loadW.push('}');
    }
  }
  const bsDecl = ws.map((w) => `var<workgroup> BsV${w}: array<vec4<f32>, ${(BK * ROWS_TILED_BN) / 4}>;`).join('\n');

  const epilogue: string[] = [];
  for (let q = 0; q < TM; q++) {
    const [g, r] = [q >> 2, q & 3];
    epilogue.push(`  { let r = r0 + ${g * 4 * TY + r}u + ty * 4u;`);
    epilogue.push(`    if (r < r1 && n0 < p.Nout) {`);
    for (let c = 0; c < 4; c++) {
      const at = `r * p.Nout + n0 + ${c}u`;
      if (mode === 'fwdGateUp') {
        epilogue.push(`      { let g = acc1_${q}[${c}]; Out1[${at}] = g / (1.0 + exp(-g)) * acc2_${q}[${c}]; }`);
      } else {
        epilogue.push(`      Out1[${at}] = acc1_${q}[${c}];`);
        if (twoOut) epilogue.push(`      Out2[${at}] = acc2_${q}[${c}];`);
      }
    }
    epilogue.push('    }');
    epilogue.push('  }');
  }

  const fmas: string[] = [];
  for (let g = 0; g < GM; g++) {
    fmas.push(`      let a1_${g} = As1[kk * ${ROWS_TILED_BM / 4}u + ${g * TY}u + ty];`);
    if (twoA) fmas.push(`      let a2_${g} = As2[kk * ${ROWS_TILED_BM / 4}u + ${g * TY}u + ty];`);
  }
  fmas.push(`      let b1 = BsV1[kk * ${ROWS_TILED_BN / 4}u + tx];`);
  if (twoW) fmas.push(`      let b2 = BsV2[kk * ${ROWS_TILED_BN / 4}u + tx];`);
  for (let q = 0; q < TM; q++) {
    const [g, r] = [q >> 2, q & 3];
    if (mode === 'dx') {
      fmas.push(`      acc1_${q} = fma(vec4<f32>(a2_${g}[${r}]), b2, fma(vec4<f32>(a1_${g}[${r}]), b1, acc1_${q}));`);
    } else {
      fmas.push(`      acc1_${q} = fma(vec4<f32>(a1_${g}[${r}]), b1, acc1_${q});`);
      if (twoW) fmas.push(`      acc2_${q} = fma(vec4<f32>(a1_${g}[${r}]), b2, acc2_${q});`);
    }
  }
  // The A tile: 32 rows x 16 k = 128 vec4 along k, 128 / WG per thread (row aRow_j, k offset aK_j).
  const aLoads: string[] = [];
  const aSetup: string[] = [];
  for (let j = 0; j < (ROWS_TILED_BM * BK) / 4 / WG; j++) {
    aSetup.push(`  let aRow${j} = (lid + ${j * WG}u) / 4u; let aK${j} = ((lid + ${j * WG}u) % 4u) * 4u;`);
    aSetup.push(`  let ar${j} = r0 + aRow${j}; let aIn${j} = ar${j} < r1;`);
    aSetup.push(`  let aBase${j} = select(0u, ${gather ? `perm[min(ar${j}, r1 - 1u)]` : `ar${j}`}, aIn${j}) * p.Kin;`);
    aLoads.push(`    {
      let kk = k0 + aK${j};
      let inb = aIn${j} && kk < p.Kin;
      let at = select(0u, (aBase${j} + kk) / 4u, inb);
      let v1 = select(vec4<f32>(0.0), A1[at], inb);
      ${twoA ? 'let v2 = select(vec4<f32>(0.0), A2[at], inb);' : ''}
      for (var c = 0u; c < 4u; c++) {
        let q = (aK${j} + c) * ${ROWS_TILED_BM}u + aRow${j};
        As1[q / 4u][q % 4u] = v1[c];
        ${twoA ? 'As2[q / 4u][q % 4u] = v2[c];' : ''}
      }
    }`);
  }

  return /* wgsl */ `
struct Params { Kin: u32, Nout: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
${decl.join('\n')}

var<workgroup> As1: array<vec4<f32>, ${(ROWS_TILED_BM * BK) / 4}>;
${twoA ? `var<workgroup> As2: array<vec4<f32>, ${(ROWS_TILED_BM * BK) / 4}>;` : ''}
${bsDecl}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
${expertTileStart(ROWS_TILED_BN)}
  let n0 = col0 + tx * 4u;
  let wBase = e * p.Nout * p.Kin;
  // This thread's share of the A tile.
${aSetup.join('\n')}
${Array.from({ length: TM }, (_, q) => `  var acc1_${q} = vec4<f32>(0.0);${twoW && mode !== 'dx' ? ` var acc2_${q} = vec4<f32>(0.0);` : ''}`).join('\n')}
  for (var k0 = 0u; k0 < p.Kin; k0 += ${BK}u) {
${aLoads.join('\n')}
${loadW.map((s) => `    ${s}`).join('\n')}
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
${fmas.join('\n')}
    }
    workgroupBarrier();
  }
${epilogue.join('\n')}
}`;
}
