/**
 * Weights repacked once for the decode step (BatchSession), so that projections reading the same input
 * run as one GEMV over the rows of several matrices instead of one dispatch each:
 *   KDA:  [q_proj; k_proj; v_proj; f_a_proj; g_a_proj; b_proj] h, and the three conv1d kernels as one
 *         [3*H*d, 1, W] (convStep convolves q, k and v in one pass);
 *   MLA:  [q_proj; kv_a_proj_with_mqa] h;
 *   FFN:  MoE [gate (router); shared gate_proj; shared up_proj] h2, dense [gate_proj; up_proj] h2.
 * The GEMV computes every output row on its own (one reduction per row of W), so each packed output
 * equals what the separate projection gives. The copies cost memory (about 1.7 GB for the 48B preset, on
 * top of 98 GB), and are dropped with the session.
 *
 * Offsets inside each packed output are listed beside the tensor; q, k, v and the low-rank parts come
 * first so their columns start at well-aligned offsets (a view of them binds without a copy at batch 1).
 */
import { asGpu } from '../kernels/common.js';
import { stackRows } from '../kernels/copy/index.js';
import type { CpuStorage } from '../tensor/storage.js';
import type { Tensor } from '../tensor/tensor.js';
import { type KimiLinearConfig, isMoeLayer, layerMixer } from './config.js';
import type { KimiLinearModel } from './forward.js';

export interface KdaPacked {
  /** [3*H*d + rf + rg + H, D]: q, k, v, f_a, g_a, b rows. */
  inProj: Tensor;
  /** [3*H*d, 1, W]: the q, k, v conv kernels. */
  conv: Tensor;
  /**
   * [2*H*d, rf + rg]: f_b_proj and g_b_proj as one block-diagonal matrix, applied to the adjacent f_a|g_a
   * columns of the projection: out[:, :H*d] = f_b f_a(h), out[:, H*d:] = g_b g_a(h). The zero blocks add
   * exact zeros (they double a 1 MB read per layer at the 48B shapes, for one dispatch fewer). Undefined
   * when the rows cannot be copied into place (odd bf16 widths): then f_b and g_b run separately.
   */
  gateUp?: Tensor;
  /** Column offsets in the projection's output. */
  fA: number;
  gA: number;
  beta: number;
  rf: number;
  rg: number;
}

export interface FfnPacked {
  /** MoE: [E (router) + 2*Is, D]; dense: [2*I, D] (gate rows, then up rows). */
  inProj: Tensor;
  /** Column of the router logits (MoE), or -1 when the router is not packed (dense, or a dtype mismatch). */
  router: number;
  /** Where the gate and up columns of the (shared) SwiGLU MLP start, and their count (0: no MLP). */
  gate: number;
  up: number;
  I: number;
}

export class DecodeWeights {
  readonly kda = new Map<number, KdaPacked>();
  readonly mla = new Map<number, Tensor>();
  readonly ffn = new Map<number, FfnPacked>();

  constructor(model: KimiLinearModel) {
    const cfg: KimiLinearConfig = model.cfg;
    const w = (n: string) => model.w(n);
    const pack = (what: string, parts: Tensor[]) => {
      const t = packRows(parts);
      if (!t)
        throw new Error(
          `DecodeWeights: cannot pack ${what} (${parts.map((x) => `${x}`).join(', ')}): mixed dtypes or rows not on 4-byte boundaries`,
        );
      return t;
    };
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `model.layers.${i}`;
      const a = `${p}.self_attn`;
      if (layerMixer(cfg, i) === 'kda') {
        const mats = ['q_proj', 'k_proj', 'v_proj', 'f_a_proj', 'g_a_proj', 'b_proj'].map((n) => w(`${a}.${n}.weight`));
        const qkv = mats[0].shape[0] + mats[1].shape[0] + mats[2].shape[0];
        const rf = mats[3].shape[0];
        const rg = mats[4].shape[0];
        this.kda.set(i, {
          inProj: pack(`${a} projections`, mats),
          conv: pack(
            `${a} conv1d weights`,
            ['q', 'k', 'v'].map((n) => w(`${a}.${n}_conv1d.weight`)),
          ),
          gateUp: blockDiagonal(w(`${a}.f_b_proj.weight`), w(`${a}.g_b_proj.weight`)),
          fA: qkv,
          gA: qkv + rf,
          beta: qkv + rf + rg,
          rf,
          rg,
        });
      } else {
        this.mla.set(
          i,
          pack(`${a} q/kv_a projections`, [w(`${a}.q_proj.weight`), w(`${a}.kv_a_proj_with_mqa.weight`)]),
        );
      }
      if (isMoeLayer(cfg, i)) {
        if (!cfg.num_shared_experts) continue;
        const m = `${p}.block_sparse_moe`;
        const router = w(`${m}.gate.weight`);
        const gate = w(`${m}.shared_experts.gate_proj.weight`);
        const up = w(`${m}.shared_experts.up_proj.weight`);
        const I = gate.shape[0];
        // The router joins the GEMV when its dtype matches; otherwise it stays a separate projection.
        const withRouter = packRows([router, gate, up]);
        const E = router.shape[0];
        if (withRouter) this.ffn.set(i, { inProj: withRouter, router: 0, gate: E, up: E + I, I });
        else this.ffn.set(i, { inProj: pack(`${m}.shared_experts`, [gate, up]), router: -1, gate: 0, up: I, I });
      } else {
        const gate = w(`${p}.mlp.gate_proj.weight`);
        const I = gate.shape[0];
        this.ffn.set(i, {
          inProj: pack(`${p}.mlp`, [gate, w(`${p}.mlp.up_proj.weight`)]),
          router: -1,
          gate: 0,
          up: I,
          I,
        });
      }
    }
  }

  /** Device bytes of the packed copies (beside the model's own weights). */
  bytes(): number {
    const all = [...this.kda.values()].flatMap((k) => [k.inProj, k.conv, k.gateUp]);
    all.push(...this.mla.values(), ...[...this.ffn.values()].map((f) => f.inProj));
    return all.reduce((b, t) => b + (t ? t.numel * (t.dtype === 'bf16' ? 2 : 4) : 0), 0);
  }

  dispose(): void {
    for (const k of this.kda.values()) for (const t of [k.inProj, k.conv, k.gateUp]) t?.dispose();
    for (const t of this.mla.values()) t.dispose();
    for (const f of this.ffn.values()) f.inProj.dispose();
    this.kda.clear();
    this.mla.clear();
    this.ffn.clear();
  }
}

/**
 * The rows of several tensors [n_i, ...rest] (one dtype, same trailing shape) stacked into a new tensor,
 * by byte copies. Undefined when they cannot be packed (mixed dtypes or shapes, or a part whose bytes do
 * not start on a 4-byte boundary, which copyBufferToBuffer needs): the caller keeps the separate weights.
 */
export function packRows(parts: readonly Tensor[]): Tensor | undefined {
  const first = parts[0];
  const rest = first.shape.slice(1);
  const rowElems = rest.reduce((a, b) => a * b, 1);
  const bpe = first.dtype === 'bf16' ? 2 : 4;
  let rows = 0;
  for (const t of parts) {
    if (t.dtype !== first.dtype || t.rank !== first.rank || t.shape.slice(1).some((d, i) => d !== rest[i])) return;
    if (!t.isContiguous) return;
    if ((rows * rowElems * bpe) % 4 !== 0 || (t.offset * bpe) % 4 !== 0) return;
    rows += t.shape[0];
  }
  if ((rows * rowElems * bpe) % 4 !== 0) return;
  return stackRows(first.device, parts);
}

/**
 * [[a, 0], [0, b]] for a [m, p] and b [n, q] of one dtype: [m + n, p + q], by one byte copy per row (made
 * once per session). Undefined when a row does not start on a 4-byte boundary (copyBufferToBuffer).
 */
export function blockDiagonal(a: Tensor, b: Tensor): Tensor | undefined {
  if (a.dtype !== b.dtype || a.rank !== 2 || b.rank !== 2 || !a.isContiguous || !b.isContiguous) return;
  const [m, pa] = a.shape;
  const [n, q] = b.shape;
  const bpe = a.dtype === 'bf16' ? 2 : 4;
  if (((pa + q) * bpe) % 4 || (pa * bpe) % 4 || (q * bpe) % 4 || (a.offset * bpe) % 4 || (b.offset * bpe) % 4) return;
  const out = a.device.zeros([m + n, pa + q], a.dtype);
  const gpu = asGpu(a.device);
  const put = (src: Tensor, row: number, at: number, len: number) => {
    if (gpu) gpu.copyBytes(src, row * len, out, at, len);
    else {
      const from = (src.storage as CpuStorage).data.subarray(src.offset + row * len, src.offset + (row + 1) * len);
      (out.storage as CpuStorage).data.set(from, out.offset + at);
    }
  };
  for (let r = 0; r < m; r++) put(a, r, r * (pa + q), pa);
  for (let r = 0; r < n; r++) put(b, r, (m + r) * (pa + q) + pa, q);
  return out;
}

/**
 * Device bytes the packed copies of DecodeWeights take for this model, without making them (what a
 * memory budget must count beside the weights): the same parts the constructor packs, assuming every
 * pack succeeds (it throws otherwise, and a router of another dtype is at most E rows too many).
 */
export function decodeWeightBytes(model: KimiLinearModel): number {
  const cfg = model.cfg;
  const bytes = (t: Tensor) => t.numel * (t.dtype === 'bf16' ? 2 : 4);
  const has = (n: string) => model.weights.has(n);
  const w = (n: string) => model.w(n);
  let total = 0;
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const a = `${p}.self_attn`;
    if (layerMixer(cfg, i) === 'kda') {
      for (const n of [
        'q_proj',
        'k_proj',
        'v_proj',
        'f_a_proj',
        'g_a_proj',
        'b_proj',
        'q_conv1d',
        'k_conv1d',
        'v_conv1d',
      ])
        total += bytes(w(`${a}.${n}.weight`));
      const fb = w(`${a}.f_b_proj.weight`);
      const gb = w(`${a}.g_b_proj.weight`);
      total += (fb.shape[0] + gb.shape[0]) * (fb.shape[1] + gb.shape[1]) * (fb.dtype === 'bf16' ? 2 : 4);
    } else total += bytes(w(`${a}.q_proj.weight`)) + bytes(w(`${a}.kv_a_proj_with_mqa.weight`));
    const m = `${p}.block_sparse_moe`;
    if (isMoeLayer(cfg, i)) {
      if (!cfg.num_shared_experts) continue;
      for (const n of ['gate', 'shared_experts.gate_proj', 'shared_experts.up_proj'])
        if (has(`${m}.${n}.weight`)) total += bytes(w(`${m}.${n}.weight`));
    } else total += bytes(w(`${p}.mlp.gate_proj.weight`)) + bytes(w(`${p}.mlp.up_proj.weight`));
  }
  return total;
}
