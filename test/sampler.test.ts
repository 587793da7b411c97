import { describe, expect, it } from 'vitest';
import { Sampler } from '../src/generate/sampler.js';

const logits = new Float32Array([1, 3, 2, 0.5, 2.9]);

describe('Sampler', () => {
  it('greedy and temperature 0 take the argmax', () => {
    expect(new Sampler({ greedy: true }).sample(logits)).toBe(1);
    expect(new Sampler({ temperature: 0 }).sample(logits)).toBe(1);
  });

  it('top-k 1 is greedy whatever the seed', () => {
    for (let s = 0; s < 20; s++) expect(new Sampler({ topK: 1, seed: s }).sample(logits)).toBe(1);
  });

  it('top-k 2 only ever draws the two best', () => {
    const s = new Sampler({ topK: 2, seed: 1 });
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(s.sample(logits));
    expect([...seen].sort()).toEqual([1, 4]);
  });

  it('top-p keeps the smallest set whose mass reaches p', () => {
    // softmax([10, 9, 0, ...]): the first two hold ~99.99% of the mass.
    const l = new Float32Array([10, 9, 0, 0, 0]);
    const s = new Sampler({ topP: 0.9, seed: 3 });
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(s.sample(l));
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it('draw frequencies follow the softmax', () => {
    const l = new Float32Array([0, Math.log(3)]);
    const s = new Sampler({ seed: 7 });
    let ones = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) ones += s.sample(l);
    expect(ones / n).toBeGreaterThan(0.72);
    expect(ones / n).toBeLessThan(0.78);
  });

  it('the same seed gives the same sequence', () => {
    const a = new Sampler({ seed: 42, temperature: 1.3 });
    const b = new Sampler({ seed: 42, temperature: 1.3 });
    const da = Array.from({ length: 50 }, () => a.sample(logits));
    const db = Array.from({ length: 50 }, () => b.sample(logits));
    expect(da).toEqual(db);
  });

  it('repetition penalty demotes tokens already seen', () => {
    expect(new Sampler({ greedy: true, repetitionPenalty: 2 }).sample(logits, [1])).toBe(4);
  });

  it('rejects nonsense options with the option named', () => {
    expect(() => new Sampler({ topP: 1.5 })).toThrow(/topP = 1.5/);
    expect(() => new Sampler({ temperature: -1 })).toThrow(/temperature = -1/);
  });
});
