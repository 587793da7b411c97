/**
 * The readback pacer (model/readbackPacer.ts): when a pipelined step's ids are mapped. Timers and the clock are
 * faked, so each read's submit, sleep, map and arrival happen at chosen times.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  PACER_LATE_MIN_MS,
  PACER_MARGIN_MS,
  PACER_PROBE_EVERY,
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

/** The late reads' lateness these tests set (readbackPacerTuning.lateMs; off by default). */
const LATE = 0.5;

describe('ReadbackPacer', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] }));
  afterEach(() => {
    vi.useRealTimers();
    readbackPacerTuning.lateMs = 0;
  });

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

  /** A read whose ids arrive `arrival` ms after its submit (ready at once, 0.1 ms, if the map starts later). */
  async function readArriving(p: ReadbackPacer, arrival: number): Promise<number> {
    const sleep = p.sleepMs();
    const pace = p.begin();
    const before = pace.beforeMap();
    await vi.runAllTimersAsync();
    await before;
    vi.advanceTimersByTime(Math.max(0.1, arrival - sleep));
    pace.done();
    return sleep;
  }

  it('by default every paced read maps a margin before the estimate', async () => {
    const p = new ReadbackPacer();
    for (let i = 0; i < PACER_WARM_READS; i++) await readArriving(p, 10);
    for (let i = 0; i < PACER_PROBE_EVERY + 2; i++)
      expect(await readArriving(p, 10)).toBeCloseTo(10 - PACER_MARGIN_MS, 6);
  });

  it('late reads: one probe maps a margin early, the next map late, every PACER_PROBE_EVERY-th probes', async () => {
    readbackPacerTuning.lateMs = LATE;
    const p = new ReadbackPacer();
    for (let i = 0; i < PACER_WARM_READS; i++) await readArriving(p, 10);
    const sleeps: number[] = [];
    for (let i = 0; i < 2 * PACER_PROBE_EVERY; i++) sleeps.push(await readArriving(p, 10));
    for (const [i, s] of sleeps.entries())
      expect(s).toBeCloseTo(i % PACER_PROBE_EVERY === 0 ? 10 - PACER_MARGIN_MS : 10 + LATE, 6);
  });

  it('late reads that still wait raise the estimate once the window holds only slower reads; a probe that finds its ids ready halves it', async () => {
    readbackPacerTuning.lateMs = LATE;
    const p = new ReadbackPacer();
    for (let i = 0; i < PACER_WARM_READS; i++) await readArriving(p, 10);
    // Steps got slower (ids at 14 ms): each read waits and notes its arrival, the faster reads age out of the window.
    for (let i = 0; i < PACER_WINDOW; i++) await readArriving(p, 14);
    // PACER_WINDOW paced reads since warming: the next is a probe, a margin before the new estimate.
    expect(PACER_WINDOW % PACER_PROBE_EVERY).toBe(0);
    expect(p.sleepMs()).toBeCloseTo(14 - PACER_MARGIN_MS, 6);
    // Steps got faster (ids at 6 ms): the probe finds them ready and the estimate halves its sleep; the late reads
    // after it sleep past that.
    await readArriving(p, 6);
    expect(p.sleepMs()).toBeCloseTo((14 - PACER_MARGIN_MS) / 2 + LATE, 6);
  });

  for (const lateMs of [0, LATE])
    it(`a single stalled step leaves the next sleeps as they were (no run of halving oversleeps after it), late ${lateMs}`, async () => {
      readbackPacerTuning.lateMs = lateMs;
      const p = new ReadbackPacer();
      for (let i = 0; i < PACER_WARM_READS; i++) await readArriving(p, 7.3);
      const first = await readArriving(p, 7.3); // the first paced read: a probe
      expect(first).toBeCloseTo(7.3 - PACER_MARGIN_MS, 6);
      const next = p.sleepMs();
      expect(next).toBeCloseTo(lateMs ? 7.3 + lateMs : 7.3 - PACER_MARGIN_MS, 6);
      // A 0.2 s stall: the ids come 200 ms after the submit.
      await readArriving(p, 200);
      expect(p.sleepMs()).toBeCloseTo(next, 6);
      await readArriving(p, 7.3);
      expect(p.sleepMs()).toBeCloseTo(next, 6);
    });

  it('late reads: below PACER_LATE_MIN_MS every paced read is a probe', async () => {
    readbackPacerTuning.lateMs = LATE;
    const p = new ReadbackPacer();
    for (let i = 0; i < PACER_WARM_READS; i++) await readArriving(p, 3.5);
    expect(3.5).toBeLessThan(PACER_LATE_MIN_MS);
    for (let i = 0; i < PACER_PROBE_EVERY + 2; i++)
      expect(await readArriving(p, 3.5)).toBeCloseTo(3.5 - PACER_MARGIN_MS, 6);
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
