import { describe, expect, it } from 'vitest';
import { parseSweep, withSweepVariant } from '../src/bench/decodeSweep.js';
import { gatedNormGemvTuning } from '../src/kernels/fused/gatedNormGemv.wgsl.js';
import { normGemvTuning } from '../src/kernels/fused/normGemv.wgsl.js';
import { recurrentGatedTuning } from '../src/kernels/kda/recurrentGated.js';
import { moeDecodeTuning } from '../src/kernels/moe/decode.wgsl.js';

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
          moeStage: [true, true],
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
      stageGateUp: true,
      stageDown: true,
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
    expect(() => parseSweep('[{"label":"x","moeStage":[true]}]')).toThrow(/moeStage/);
    expect(() => parseSweep('[{"label":"x","normGemvLanes":[64,32]}]')).toThrow(/normGemvLanes/);
    expect(() => parseSweep('[{"label":"x","normGemvLanes":[48,32,32]}]')).toThrow(/48 lanes/);
    expect(() => parseSweep('[{"label":"x","gatedLanes":512}]')).toThrow(/512 lanes/);
  });
});
