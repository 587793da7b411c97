/**
 * QK-clip (MuonClip, Kimi K2): after the optimizer step, every MLA head h whose largest pre-softmax
 * logit this step exceeded tau gets gamma = tau / max_logit folded into its query and key weights, so
 * the next step's logits for that head are about tau at most.
 *
 * Which rows: with NoPE MLA the logit of head h is (q_nope_h . k_nope_h + q_R_h . k_R) * scale, where
 *   q_h = rows [h*(dn+dr), (h+1)*(dn+dr)) of q_proj: the first dn are q_nope_h, the last dr are q_R_h;
 *   k_nope_h = rows [h*(dn+dv), h*(dn+dv)+dn) of kv_b_proj (applied to the normalised latent);
 *   k_R = the last dr rows of kv_a_proj_with_mqa, shared by every head.
 * The nope parts are per head, so q_nope_h and k_nope_h each get sqrt(gamma) (their product gamma).
 * k_R is shared, so scaling it would clip heads that never spiked: as in K2, it is left untouched and
 * q_R_h takes the whole gamma. The value rows of kv_b_proj are not touched. Each head's whole logit is
 * therefore multiplied by gamma exactly.
 */
import type { KimiLinearConfig } from '../model/config.js';
import { layerMixer } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';
import { scaleRows } from './optim/ops.js';

export interface QkClipEvent {
  layer: number;
  head: number;
  maxLogit: number;
  gamma: number;
}

/** Per-row factors for q_proj and kv_b_proj of one MLA layer from its heads' max logits. */
export function qkClipFactors(
  cfg: KimiLinearConfig,
  maxLogits: readonly number[],
  tau: number,
): { q: Float32Array; kvb: Float32Array; gammas: number[] } {
  const H = cfg.num_attention_heads;
  const dn = cfg.qk_nope_head_dim!;
  const dr = cfg.qk_rope_head_dim!;
  const dv = cfg.v_head_dim!;
  if (maxLogits.length !== H) throw new Error(`qk-clip: ${maxLogits.length} max logits, expected ${H} (heads)`);
  const q = new Float32Array(H * (dn + dr)).fill(1);
  const kvb = new Float32Array(H * (dn + dv)).fill(1);
  const gammas = maxLogits.map((m) => (m > tau ? tau / m : 1));
  for (let h = 0; h < H; h++) {
    const g = gammas[h];
    if (g === 1) continue;
    const s = Math.sqrt(g);
    for (let r = 0; r < dn; r++) q[h * (dn + dr) + r] = s;
    for (let r = dn; r < dn + dr; r++) q[h * (dn + dr) + r] = g;
    for (let r = 0; r < dn; r++) kvb[h * (dn + dv) + r] = s;
  }
  return { q, kvb, gammas };
}

/** Apply QK-clip to every MLA layer from `stats` (`layers.{i}.mla.max_logit`); returns the clipped heads. */
export function applyQkClip(
  cfg: KimiLinearConfig,
  weights: ModelWeights,
  maxLogit: (layer: number) => number[] | undefined,
  tau: number,
): QkClipEvent[] {
  const events: QkClipEvent[] = [];
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    if (layerMixer(cfg, i) !== 'mla') continue;
    const logits = maxLogit(i);
    if (!logits?.some((m) => m > tau)) continue;
    const { q, kvb, gammas } = qkClipFactors(cfg, logits, tau);
    const a = `model.layers.${i}.self_attn`;
    const device = weights.get(`${a}.q_proj.weight`).device;
    const fq = device.fromHost(q, [q.length]);
    const fk = device.fromHost(kvb, [kvb.length]);
    scaleRows(weights.get(`${a}.q_proj.weight`), fq);
    scaleRows(weights.get(`${a}.kv_b_proj.weight`), fk);
    fq.dispose();
    fk.dispose();
    gammas.forEach((gamma, head) => {
      if (gamma < 1) events.push({ layer: i, head, maxLogit: logits[head], gamma });
    });
  }
  return events;
}
