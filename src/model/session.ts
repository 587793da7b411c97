/**
 * One sequence being generated: a prompt is prefilled (chunked KDA, full MLA attention), then tokens are
 * decoded one at a time from the hybrid cache, the KDA layers from their recurrent state and conv tails,
 * the MLA layers by absorbed attention over the paged latent cache (kv_b_proj folded into the query and
 * the output, so the cache is never expanded per head). Every step's logits equal the full-sequence
 * forward's at that position (test/model-decode.test.ts).
 */
import { concatLast } from '../kernels/concat/index.js';
import { contiguous } from '../kernels/copy/index.js';
import { linear, matmul } from '../kernels/matmul/index.js';
import { cacheWrite, mlaDecode } from '../kernels/mla/index.js';
import { rmsnorm } from '../kernels/rmsnorm/index.js';
import { keep, scope } from '../tensor/scope.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { layerMixer } from './config.js';
import type { KdaCarry, KimiLinearModel } from './forward.js';
import { HybridCache } from './hybridCache.js';

export interface SessionOptions {
  /** Longest sequence (prompt + generated) this session may hold. */
  maxLength: number;
  /** MLA latent cache precision; bf16 halves the memory. Default f32. */
  cacheDtype?: 'f32' | 'bf16';
  pageSize?: number;
}

/** One run's token positions on the device: cache rows to write and the length to attend over. */
interface Positions {
  seq: Tensor;
  pos: Tensor;
  lengths: Tensor;
  /** This sequence's row of the page table, [1, maxPages]. */
  pageRow: Tensor;
  end: number;
}

interface Absorbed {
  /** [H, dn, r]: q_lat[h] = q_nope[h] W_uk[h] */
  wUk: Tensor;
  /** [H, dv, r]: o[h] = W_uv[h] o_lat[h] */
  wUv: Tensor;
}

export class Session {
  private readonly device: Device;
  private readonly carries = new Map<number, KdaCarry>();
  private readonly mlaIndex = new Map<number, number>();
  private readonly absorbed = new Map<number, Absorbed>();
  private readonly cache: HybridCache;
  private readonly slot: number;
  private len = 0;
  /** Host milliseconds of the last step: recording its work, and in all (recording + GPU + readback). */
  lastStep = { recordMs: 0, totalMs: 0 };

  constructor(
    readonly model: KimiLinearModel,
    readonly opts: SessionOptions,
  ) {
    const cfg = model.cfg;
    this.device = model.w('model.embed_tokens.weight').device;
    let m = 0;
    for (let i = 0; i < cfg.num_hidden_layers; i++) if (layerMixer(cfg, i) === 'mla') this.mlaIndex.set(i, m++);
    const pageSize = opts.pageSize ?? 64;
    this.cache = new HybridCache(this.device, {
      kdaLayers: 0,
      mlaLayers: m,
      kdaHeads: 0,
      kdaHeadDim: 0,
      convSize: 1,
      latentDim: (cfg.kv_lora_rank ?? 0) + (cfg.qk_rope_head_dim ?? 0),
      maxSequences: 1,
      pageSize,
      numPages: Math.max(1, Math.ceil(opts.maxLength / pageSize)),
      maxLength: opts.maxLength,
      cacheDtype: opts.cacheDtype ?? 'f32',
    });
    this.slot = this.cache.open();
  }

  get length(): number {
    return this.len;
  }

  /** Run the prompt; returns the logits of its last position [V]. Only at the start of a session. */
  async prefill(ids: ArrayLike<number>): Promise<Float32Array> {
    if (this.len > 0) throw new Error('prefill continues no earlier context yet: open a new Session per prompt');
    if (!ids.length) throw new Error('prefill: empty prompt');
    return this.run(Int32Array.from(ids));
  }

  /**
   * Pretend `length` tokens are already held, for benchmarks: pages are reserved and the length set, the
   * cache contents stay as they are (zeros). Decode then costs exactly what it would at that context.
   */
  fillSynthetic(length: number): void {
    if (this.len > 0) throw new Error('fillSynthetic: the session already holds tokens');
    this.cache.reserve(this.slot, length);
    this.len = length;
  }

  /** Cache memory held (MLA pools at full capacity, KDA states and tails), in bytes. */
  cacheBytes(): number {
    let kda = 0;
    for (const c of this.carries.values()) for (const t of [c.state, ...c.tails]) kda += t.numel * 4;
    return this.cache.memory().mlaPoolBytes + kda;
  }

  /** Feed one token; returns the logits of the next position [V]. */
  async step(token: number): Promise<Float32Array> {
    if (this.len === 0) throw new Error('step before prefill');
    return this.run(Int32Array.of(token));
  }

  private async run(ids: Int32Array): Promise<Float32Array> {
    const cfg = this.model.cfg;
    const T = ids.length;
    const { start } = this.cache.reserve(this.slot, T);
    const t0 = performance.now();
    const logits = scope(() => {
      const model = this.model;
      let x = model.embed(this.device.fromHost(ids, [1, T], 'i32'));
      // Where this run's tokens go in the latent cache: the same for every MLA layer, so made once.
      let where: Positions | undefined;
      const positions = () => {
        where ??= this.positions(T, start);
        return where;
      };
      for (let i = 0; i < cfg.num_hidden_layers; i++) {
        x = model.block(i, x, (p, h) => {
          if (layerMixer(cfg, i) === 'kda') {
            const r = model.kda(p, h, this.carry(i));
            for (const t of [r.carry!.state, ...r.carry!.tails]) keep(t);
            this.setCarry(i, r.carry!);
            return r.out;
          }
          if (start > 0) return this.mlaDecodeStep(i, p, h, positions());
          const r = model.mla(p, h, true);
          this.writeLatent(i, r.latent!.reshape([T, -1]), positions());
          return r.out;
        });
      }
      return model.head(contiguous(x.narrow(1, T - 1, 1)));
    });
    const t1 = performance.now();
    const out = await logits.toFloat32();
    logits.dispose();
    this.lastStep = { recordMs: t1 - t0, totalMs: performance.now() - t0 };
    this.len += T;
    return out;
  }

  private carry(i: number): KdaCarry {
    const hit = this.carries.get(i);
    if (hit) return hit;
    const { num_heads: H, head_dim: d, short_conv_kernel_size: W } = this.model.cfg.linear_attn_config!;
    const carry = {
      state: keep(this.device.zeros([1, H, d, d])),
      tails: [0, 1, 2].map(() => keep(this.device.zeros([1, W - 1, H * d]))),
    };
    this.carries.set(i, carry);
    return carry;
  }

  private setCarry(i: number, c: KdaCarry): void {
    const old = this.carries.get(i);
    if (old) for (const t of [old.state, ...old.tails]) t.dispose();
    this.carries.set(i, c);
  }

  private positions(T: number, start: number): Positions {
    return {
      seq: this.device.fromHost(new Int32Array(T).fill(this.slot), [T], 'i32'),
      pos: this.device.fromHost(
        Int32Array.from({ length: T }, (_, t) => start + t),
        [T],
        'i32',
      ),
      lengths: this.device.fromHost(Int32Array.of(start + T), [1], 'i32'),
      pageRow: this.cache.pageTable.narrow(0, this.slot, 1),
      end: start + T,
    };
  }

  private writeLatent(layer: number, rows: Tensor, at: Positions): void {
    cacheWrite(this.cache.mlaPool[this.mlaIndex.get(layer)!], contiguous(rows), at.seq, at.pos, this.cache.pageTable);
  }

  /** Split kv_b_proj [H*(dn+dv), r] into per-head W_uk [H, dn, r] and W_uv [H, dv, r], once. */
  private absorb(i: number, p: string): Absorbed {
    const hit = this.absorbed.get(i);
    if (hit) return hit;
    const cfg = this.model.cfg;
    const [H, dn, dv, r] = [cfg.num_attention_heads, cfg.qk_nope_head_dim!, cfg.v_head_dim!, cfg.kv_lora_rank!];
    const kvb = this.model.w(`${p}.self_attn.kv_b_proj.weight`).reshape([H, dn + dv, r]);
    const a = { wUk: keep(contiguous(kvb.narrow(1, 0, dn))), wUv: keep(contiguous(kvb.narrow(1, dn, dv))) };
    this.absorbed.set(i, a);
    return a;
  }

  /** One token of MLA by absorbed attention over the paged latent cache (h: [1, 1, D]). */
  private mlaDecodeStep(i: number, p: string, h: Tensor, at: Positions): Tensor {
    const cfg = this.model.cfg;
    const [H, dn, dr, dv, r] = [
      cfg.num_attention_heads,
      cfg.qk_nope_head_dim!,
      cfg.qk_rope_head_dim!,
      cfg.v_head_dim!,
      cfg.kv_lora_rank!,
    ];
    const a = `${p}.self_attn`;
    const { wUk, wUv } = this.absorb(i, p);
    const q = linear(h, this.model.w(`${a}.q_proj.weight`)).reshape([H, dn + dr]);
    const qLat = matmul(contiguous(q.narrow(1, 0, dn)).reshape([H, 1, dn]), wUk).reshape([H, r]);
    const qFull = concatLast(qLat, q.narrow(1, dn, dr)).reshape([1, H, r + dr]);
    const ckr = linear(h, this.model.w(`${a}.kv_a_proj_with_mqa.weight`)).reshape([1, r + dr]);
    const cNorm = rmsnorm(contiguous(ckr.narrow(1, 0, r)), this.model.w(`${a}.kv_a_layernorm.weight`), 1e-6);
    this.writeLatent(i, concatLast(cNorm, ckr.narrow(1, r, dr)), at);
    const oLat = mlaDecode(qFull, this.cache.mlaPool[this.mlaIndex.get(i)!], at.pageRow, at.lengths, {
      Rv: r,
      scale: (dn + dr) ** -0.5,
      maxLength: at.end,
    });
    const o = matmul(oLat.reshape([H, 1, r]), wUv, { transB: true }).reshape([1, 1, H * dv]);
    return linear(o, this.model.w(`${a}.o_proj.weight`));
  }

  dispose(): void {
    for (const c of this.carries.values()) for (const t of [c.state, ...c.tails]) t.dispose();
    for (const a of this.absorbed.values()) for (const t of [a.wUk, a.wUv]) t.dispose();
    this.cache.dispose();
  }
}
