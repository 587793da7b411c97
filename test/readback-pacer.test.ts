/**
 * The readback pacer (model/readbackPacer.ts): when a pipelined step's ids are mapped. Timers and the clock are
 * faked, so each read's submit, sleep, map and arrival happen at chosen times.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  PACER_MARGIN_MS,
  PACER_WARM_READS,
  PACER_WINDOW,
  pacesReadback,
  ReadbackPacer,
  readbackPacerTuning,
} from '../src/model/readbackPacer.js';

/** One read: begin now, run its beforeMap (the sleep passes on the fake clock), ids arrive `spinMs` after the map. */
async function read(p: ReadbackPacer, spinMs: number): Promise<number> {
  const pace = p.begin();
  const slept = p.sleepMs();
  const start = performance.now();
  const before = pace.beforeMap();
  await vi.runAllTimersAsync();
  await before;
  const sleptFor = performance.now() - start;
  vi.advanceTimersByTime(spinMs);
  pace.done();
  return sleptFor || slept;
}

describe('ReadbackPacer', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] }));
  afterEach(() => vi.useRealTimers());

  it('maps at once while warming, then sleeps the least warm time less the margin', async () => {
    const p = new ReadbackPacer();
    const times = [40, 9, 10, 11];
    expect(times.length).toBe(PACER_WARM_READS);
    for (const t of times) {
      expect(p.sleepMs()).toBe(0);
      await read(p, t);
    }
    expect(p.sleepMs()).toBeCloseTo(9 - PACER_MARGIN_MS, 6);
  });

  it('follows sleep + spin once a window of reads is slower, halves after a read that found its ids ready', async () => {
    const p = new ReadbackPacer();
    for (let i = 0; i < PACER_WARM_READS; i++) await read(p, 10);
    const s0 = p.sleepMs();
    expect(s0).toBeCloseTo(10 - PACER_MARGIN_MS, 6);
    // The step got slower: the ids come 3 ms after the map. The faster reads still in the window keep the sleep,
    // until every read of the window is the slower one's sleep + spin.
    await read(p, 3);
    expect(p.sleepMs()).toBeCloseTo(s0, 6);
    for (let i = 1; i < PACER_WINDOW; i++) await read(p, 3);
    expect(p.sleepMs()).toBeCloseTo(s0 + 3 - PACER_MARGIN_MS, 6);
    // Ready as soon as mapped (slept too long): the next sleep is half the last one less the margin.
    const s1 = p.sleepMs();
    await read(p, 0.1);
    expect(p.sleepMs()).toBeCloseTo(s1 / 2 - PACER_MARGIN_MS, 6);
  });

  it('a single stalled step leaves the next sleeps as they were (no run of halving oversleeps after it)', async () => {
    const p = new ReadbackPacer();
    for (let i = 0; i < PACER_WARM_READS; i++) await read(p, 7.3);
    const s0 = p.sleepMs();
    // A 0.2 s stall: the ids come 200 ms after the map.
    await read(p, 200);
    expect(p.sleepMs()).toBeCloseTo(s0, 6);
    // The next read is a normal step again: its ids come ~margin after the map, and the sleep stays.
    await read(p, PACER_MARGIN_MS);
    expect(p.sleepMs()).toBeCloseTo(s0, 6);
  });

  it('does not sleep below the minimum (fast steps map at once)', async () => {
    const p = new ReadbackPacer();
    for (let i = 0; i < PACER_WARM_READS; i++) await read(p, 2);
    expect(p.sleepMs()).toBe(0);
  });
});

describe('pacesReadback', () => {
  afterEach(() => {
    readbackPacerTuning.mode = 'auto';
  });
  it('the option wins; auto paces all but software adapters, in Node only; on / off force it', () => {
    expect(pacesReadback(false, false)).toBe(false);
    expect(pacesReadback(true, true)).toBe(true);
    expect(pacesReadback(undefined, false)).toBe(true);
    expect(pacesReadback(undefined, true)).toBe(false);
    // Outside Node (a browser: no busy polling to save) auto does not pace.
    expect(pacesReadback(undefined, false, false)).toBe(false);
    readbackPacerTuning.mode = 'on';
    expect(pacesReadback(undefined, true)).toBe(true);
    readbackPacerTuning.mode = 'off';
    expect(pacesReadback(undefined, false)).toBe(false);
  });
});
