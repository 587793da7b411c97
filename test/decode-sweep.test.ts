import { describe, expect, it } from 'vitest';
import { parseSweep, withSweepVariant } from '../src/bench/decodeSweep.js';
import { gatedNormGemvTuning } from '../src/kernels/fused/gatedNormGemv.wgsl.js';
import { normGemvTuning } from '../src/kernels/fused/normGemv.wgsl.js';
import { recurrentGatedTuning } from '../src/kernels/kda/recurrentGated.js';
import { type MoeDecodeVariant, moeDecodeKey, moeDecodeTuning, moeDecodeWgsl } from '../src/kernels/moe/decode.wgsl.js';

/** The tunings a sweep variant may touch, as plain copies (fields left unset stay absent). */
function snapshot() {
  return JSON.parse(
    JSON.stringify({
      moe: moeDecodeTuning,
      gated: recurrentGatedTuning,
      norm: normGemvTuning,
      gatedNorm: gatedNormGemvTuning,
    }),
  );
}

describe('bench decode --sweep variants', () => {
  it('parseSweep checks every variant without leaving its knobs set; withSweepVariant sets them and puts them back', () => {
    const before = snapshot();
    const variants = parseSweep(
      JSON.stringify([
        {
          label: 'a',
          moeRows: [4, 2],
          moePairGateUp: true,
          moePrefetchDown: true,
          moeRegSums: true,
          kdaGated: 'pf:bv16',
        },
        { label: 'b', normGemvLanes: [64, 32, 64], gatedLanes: 64, moeUnrollGateUp: 2 },
      ]),
    );
    // Applying each variant once to check it (the old Object.assign restore kept rowsGateUp, pairGateUp, bv...).
    expect(snapshot()).toEqual(before);
    const inside = withSweepVariant(variants[0], () => ({ ...moeDecodeTuning, bv: recurrentGatedTuning.bv }));
    expect(inside).toMatchObject({
      rowsGateUp: 4,
      rowsDown: 2,
      pairGateUp: true,
      prefetchDown: true,
      regSums: true,
      bv: 16,
    });
    const inside2 = withSweepVariant(variants[1], () => ({
      lanes: normGemvTuning.lanes,
      gated: gatedNormGemvTuning.lanes,
      unroll: moeDecodeTuning.unrollGateUp,
    }));
    expect(inside2).toEqual({ lanes: { plain: 64, conv: 32, route: 64 }, gated: 64, unroll: 2 });
    expect(snapshot()).toEqual(before);
  });

  it('rejects malformed new knobs with the field named', () => {
    expect(() => parseSweep('[{"label":"x","moeStage":[true,true]}]')).toThrow(/unknown key 'moeStage'/);
    expect(() => parseSweep('[{"label":"x","moePairGateUp":"on"}]')).toThrow(/moePairGateUp on, expected a boolean/);
    expect(() => parseSweep('[{"label":"x","normGemvLanes":[64,32]}]')).toThrow(/normGemvLanes/);
    expect(() => parseSweep('[{"label":"x","normGemvLanes":[48,32,32]}]')).toThrow(/48 lanes/);
    expect(() => parseSweep('[{"label":"x","gatedLanes":512}]')).toThrow(/512 lanes/);
  });
});

/**
 * The fifteenth session's A/B of pairGateUp, unrollGateUp and prefetchDown (bench/results/2026-12-02-h200-s15-decrest4-
 * run.sh): the kmoe sweep that "measured" them leaked every variant's knobs into the others, so it compared equal
 * kernels. This spec must parse, and each toggle must change exactly its own kernel of the 48B decode step (the
 * variants moeSharedDecode builds on the H200: bf16, vector loads, top-8, 32-lane subgroups) and nothing after it.
 */
describe('the pairGateUp / unrollGateUp / prefetchDown sweep', () => {
  const SPEC =
    '[{"label":"base"},{"label":"pair","moePairGateUp":true},{"label":"unroll2","moeUnrollGateUp":2},{"label":"pfDown","moePrefetchDown":true},{"label":"base2"},{"label":"pfDown-b","moePrefetchDown":true},{"label":"unroll2-b","moeUnrollGateUp":2},{"label":"pair-b","moePairGateUp":true},{"label":"base3"}]';
  const gateUp: MoeDecodeVariant = { mode: 'gateUp', wDtype: 'bf16', vec: true, k: 8, sg: 32 };
  const down: MoeDecodeVariant = { mode: 'down', wDtype: 'bf16', vec: true, k: 8, shared: true, sg: 32 };
  const kernels = () => ({
    gateUp: moeDecodeKey(gateUp),
    down: moeDecodeKey(down),
    gateUpWgsl: moeDecodeWgsl(gateUp),
    downWgsl: moeDecodeWgsl(down),
  });

  it('parses, and each variant changes only its kernel (distinct WGSL), the base rows all the default', () => {
    const before = snapshot();
    const variants = parseSweep(SPEC);
    expect(variants.map((v) => v.label)).toEqual([
      'base',
      'pair',
      'unroll2',
      'pfDown',
      'base2',
      'pfDown-b',
      'unroll2-b',
      'pair-b',
      'base3',
    ]);
    const dflt = kernels();
    // The defaults this A/B compares against (moeDecodeTuning: unroll 1, no pair, no prefetch before the routes).
    expect(dflt.gateUp).toBe('moe_decode_gateUp_bf16_v_k8_sg32');
    expect(dflt.down).toBe('moe_decode_down_bf16_v_k8_u4_sh_l64_sg32');
    const seen = variants.map((v) => withSweepVariant(v, kernels));
    // In the sweep's order: the knobs do not leak into the rows after them.
    const want: Record<string, { gateUp: string; down: string }> = {
      base: { gateUp: dflt.gateUp, down: dflt.down },
      pair: { gateUp: dflt.gateUp.replace('_sg32', '_pr_sg32'), down: dflt.down },
      unroll2: { gateUp: dflt.gateUp.replace('_k8', '_k8_u2'), down: dflt.down },
      pfDown: { gateUp: dflt.gateUp, down: dflt.down.replace('_sh', '_sh_pf') },
    };
    for (const [i, v] of variants.entries()) {
      const w = want[v.label.replace(/-b$/, '').replace(/^base\d$/, 'base')];
      expect({ gateUp: seen[i].gateUp, down: seen[i].down }, v.label).toEqual(w);
      // A changed key is a changed kernel, an unchanged one the default's code.
      expect(seen[i].gateUpWgsl === dflt.gateUpWgsl, v.label).toBe(w.gateUp === dflt.gateUp);
      expect(seen[i].downWgsl === dflt.downWgsl, v.label).toBe(w.down === dflt.down);
    }
    expect(kernels()).toEqual(dflt);
    expect(snapshot()).toEqual(before);
  });
});
