/**
 * When to start mapping a pipelined decode step's ids for reading, so the host does not busy-wait on the GPU.
 *
 * Why: Dawn's Node bindings (npm `webgpu`) poll the device with setImmediate for as long as any map or other
 * promise of theirs is pending, a fresh Immediate each turn. A pipelined decode always has a step's readback
 * pending, so the host spun for the whole step: ~1 MB of garbage a step on the tiny model (33 dispatches, lavapipe;
 * `node --trace-gc-nvp`), thousands of turns a step on the H200, with periodic major collections of ~27 ms
 * (bench/results/2026-12-03-h200-s17-lead5-gc1m-trace.txt) and a CPU core held at 100%. Starting the map later,
 * after a timer, keeps the spin to the last stretch of each step.
 *
 * How: a read's time from its submit to its ids arriving is about its sleep plus its spin (from the map call to the
 * promise resolving). Steps of one session in the same state take about the same time, so the next read sleeps the
 * least such time of the last PACER_WINDOW reads, less PACER_MARGIN_MS, and then maps. The least, not the last: a
 * single stalled step (the H200's 48B decode has one of ~0.15-0.2 s every few hundred steps, paced or not) must not
 * set the next sleeps. With the last read's time as the estimate (the seventeenth session's form) a 0.21 s stall
 * made the next read sleep 0.21 s, find its ids ready, halve, and so on: 212, 218, 107, 53, 24 ms steps, ~0.4 s lost
 * a stall (bench/results/2026-12-03-h200-s18-lead1-pace-*). The timer's lateness is left out of the times (else each
 * late timer would lengthen the next sleep: on lavapipe, whose threads load the CPU, that ran away); a read whose
 * ids were ready as soon as it mapped slept too long, by an unknown amount, and counts as half its sleep. The first
 * PACER_WARM_READS reads map at once and only measure (a slow first step, compiling and capturing, taken as the
 * estimate left the tiny model's steps alternating 1 / 76 ms on lavapipe for dozens of steps; the least ignores it).
 * A step faster than the last (a shorter context, fewer sequences) overshoots once or twice, then the estimate
 * follows; a slower one maps early (a longer spin, no lateness) until the window has only slower reads. Only timing
 * changes: the same copies, submits and ids.
 *
 * Late reads (readbackPacerTuning.lateMs > 0, `bench decode --pace-late <ms>`; off by default): only one paced read in
 * PACER_PROBE_EVERY maps that early (a probe, which measures); the others map lateMs AFTER the estimate, when the ids
 * are mostly there, so the bindings would poll for the map alone (the garbage left, ~0.3 MB a step at 1M, still
 * brings a 24-47 ms mark-compact every ~250 steps). Measured with 0.5 ms (256 steps, own processes,
 * bench/results/2026-12-03-h200-s18-lead4-*): means 7.561 / 7.994 ms at 1M against 8.064 / 7.864 with probes only and
 * 8.294 / 8.312 off, 3.740 against 4.193 / 4.369 at 4K, medians equal, but 29-59 of 256 steps above 1.2x the median
 * against 7-14 (late maps that cost the GPU its next step's start) and the same two mark-compacts in a GC trace: not
 * the garbage cut hoped for, so off.
 *
 * Measured (H200, 48B preset, int8 cache, 64 steps a context, own processes on / off / on / off,
 * bench/results/2026-12-03-h200-s17-lead6-*): median steps the same (1M 7.298 / 7.305 ms on against 7.297 / 7.312
 * off; 4K 3.461 / 3.462 against 3.453 / 3.454), the means 7.323 / 7.305 against 9.007 / 7.312 at 1M and 4.308 /
 * 3.525 against 5.457 / 3.918 at 4K, the longest step 8-26 ms on against 11-112 off (the ~0.1 s stalls of earlier
 * sittings were in the off runs only; four runs are too few to say they are gone). On the tiny model (lavapipe) the
 * garbage fell from ~740 to ~250 MB over 600 steps (`node --trace-gc-nvp`).
 * Eighteenth session, 256 steps at 1M (own processes): with the last read's time as the estimate, means 9.534 / 9.168
 * on against 8.125 / 8.235 off (the stall cascade above); with the window's least, 7.756 / 8.084 / 7.612 on against
 * 8.277 / 8.414 / 8.369 off, medians equal (bench/results/2026-12-03-h200-s18-lead{1,2,3}-pace-*).
 */
import { isNode } from '../gpu/acquire.js';

/** How long before the estimated arrival of a step's ids its map starts (ms): timers fire up to ~1 ms late. */
export const PACER_MARGIN_MS = 1.5;
/** No sleep below this: a timer's own lateness (~1 ms) would cost more than the spin it saves. */
export const PACER_MIN_SLEEP_MS = 1;
/** A map that resolves within this (ms) found its ids ready: the sleep before it was too long. */
export const PACER_READY_MS = 0.5;
/** Reads that map at once and only measure, before pacing starts (their least time is the first estimate). */
export const PACER_WARM_READS = 4;
/** The reads whose least submit-to-ids time is the estimate (a stall stays out of it). */
export const PACER_WINDOW = 8;
/**
 * Every PACER_PROBE_EVERY-th paced read is a probe: it maps PACER_MARGIN_MS before the estimate and measures the ids'
 * arrival (a late read learns it only when its ids were not ready yet), so the estimate follows faster steps.
 */
export const PACER_PROBE_EVERY = 8;
/**
 * Late reads only where the estimate is at least this (ms); below it every paced read is a probe. A timer can fire
 * ~1 ms late, which added to the lateness must stay well inside a step.
 */
export const PACER_LATE_MIN_MS = 4;
/**
 * BatchSessionOptions.paceReadback's default (bench decode --pace-readback on|off|auto): 'auto' paces on every adapter
 * but a software one (lavapipe: its GPU is the CPU's threads, and paced the tiny model's steps kept their median,
 * 12.7-12.8 against 12.3 ms, but their p90 rose from 19 to 32 ms; 600 steps, `bench decode --model fixtures/tiny-kimi`).
 */
export const readbackPacerTuning: { mode: 'auto' | 'on' | 'off'; lateMs: number } = {
  mode: 'auto',
  /**
   * Paced reads other than probes map this long AFTER their ids' estimated arrival (ms); 0 (default): no late reads,
   * every paced read a probe. Meant to be harmless to the step rate while the lateness plus the host's recording of the
   * next step (~1.2-1.5 ms on the H200's 48B step) stays under a step (the GPU runs the step submitted before this read
   * was awaited); measured, it cost some steps their start (file comment).
   */
  lateMs: 0,
};

/**
 * Whether a session paces its reads: its own option, else readbackPacerTuning on this adapter. 'auto' paces only in
 * Node (`inNode`): the busy polling is the Node bindings'; a browser waits on a map without spinning the page.
 */
export function pacesReadback(option: boolean | undefined, softwareAdapter: boolean, inNode = isNode()): boolean {
  if (option !== undefined) return option;
  return readbackPacerTuning.mode === 'auto' ? inNode && !softwareAdapter : readbackPacerTuning.mode === 'on';
}

type ReadKind = 'warm' | 'probe' | 'late';

export class ReadbackPacer {
  /** Reads timed so far (the first PACER_WARM_READS map at once and only measure). */
  private reads = 0;
  /** Paced reads begun (every PACER_PROBE_EVERY-th, from the first, a probe). */
  private paced = 0;
  /**
   * The last PACER_WINDOW reads' times from submit to ids (ms), whose least is the estimate. An unpaced (warming)
   * read's is measured; a paced read's is its sleep asked for plus its spin after the map started (a timer's lateness
   * left out, so it cannot feed back into longer and longer sleeps), or, where it found its ids ready at once (slept
   * too long, by an unknown amount), half that sleep.
   */
  private readonly recent: number[] = [];

  private note(ms: number): void {
    this.recent.push(ms);
    if (this.recent.length > PACER_WINDOW) this.recent.shift();
  }

  /**
   * Pacing for a read submitted now: `beforeMap` (GpuContext.read's hook) sleeps, then notes when the map starts;
   * `done()`, called as the ids arrive, updates the estimate.
   */
  begin(): { beforeMap: () => Promise<void>; done: () => void } {
    const kind = this.nextKind();
    const sleep = this.sleepFor(kind);
    if (kind !== 'warm') this.paced++;
    const submitAt = performance.now();
    let mapAt: number | undefined;
    return {
      beforeMap: async () => {
        if (sleep > 0) await new Promise((r) => setTimeout(r, sleep));
        mapAt = performance.now();
      },
      done: () => {
        if (mapAt === undefined) return;
        const now = performance.now();
        const ready = now - mapAt < PACER_READY_MS;
        this.reads++;
        if (kind === 'warm') this.note(now - submitAt);
        else if (kind === 'probe') this.note(sleep > 0 && ready ? sleep / 2 : sleep + (now - mapAt));
        // A late read that still waited measured the arrival (the step got slower); one that found its ids ready
        // learned nothing (it was meant to).
        else if (!ready) this.note(sleep + (now - mapAt));
      },
    };
  }

  /** The estimated time from a read's submit to its ids (ms): the least of the window's. */
  private estimate(): number {
    return Math.min(...this.recent);
  }

  private nextKind(): ReadKind {
    if (this.reads < PACER_WARM_READS) return 'warm';
    if (readbackPacerTuning.lateMs <= 0 || this.estimate() < PACER_LATE_MIN_MS) return 'probe';
    return this.paced % PACER_PROBE_EVERY === 0 ? 'probe' : 'late';
  }

  private sleepFor(kind: ReadKind): number {
    if (kind === 'warm') return 0;
    if (kind === 'late') return this.estimate() + readbackPacerTuning.lateMs;
    const s = this.estimate() - PACER_MARGIN_MS;
    return s >= PACER_MIN_SLEEP_MS ? s : 0;
  }

  /** The sleep for a read submitted now (ms): 0 while warming or below PACER_MIN_SLEEP_MS; a late read's past the estimate. */
  sleepMs(): number {
    return this.sleepFor(this.nextKind());
  }
}
