/** A byte-progress bar on stderr, only when stderr is a TTY (never in pipes, logs or tests). */
import cliProgress from 'cli-progress';

export interface Progress {
  add(n: number): void;
  stop(): void;
}

export function byteProgress(label: string, totalBytes: number): Progress {
  if (!process.stderr.isTTY || totalBytes <= 0) return { add() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} MB | {eta_formatted}`,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const total = Math.max(1, Math.round(totalBytes / 1e6));
  bar.start(total, 0);
  let bytes = 0;
  return {
    add(n: number) {
      bytes += n;
      bar.update(Math.min(total, Math.round(bytes / 1e6)));
    },
    stop() {
      bar.update(total);
      bar.stop();
    },
  };
}
