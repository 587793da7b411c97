/**
 * `kimi-linear train --config RUN.yaml [--resume] [--backend cpu|webgpu|auto]`: trains a Kimi Linear
 * model as the run file says (docs/TRAINING.md), writing metrics.jsonl and atomic checkpoints into the
 * run directory. A progress bar (loss, tokens/s, ETA) shows on a TTY; otherwise a line per ~5% of steps.
 * Divergence (NaN/Inf, loss spike) stops the run with the step, metric, layer and last good checkpoint.
 */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { parseBackend } from '../runtime/backend.js';
import { runTraining } from '../train/run.js';
import type { StepMetrics } from '../train/trainer.js';
import { printJson } from './shared.js';

function line(m: StepMetrics, steps: number, etaS: number): string {
  const ev = m.eval_loss !== undefined ? ` eval ${m.eval_loss.toFixed(4)}` : '';
  return (
    `step ${m.step}/${steps} loss ${m.loss.toFixed(4)}${ev} lr ${m.lr.toExponential(2)} ` +
    `gnorm ${m.grad_norm.toFixed(3)} ${Math.round(m.tokens_per_s)} tok/s eta ${Math.round(etaS)}s`
  );
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a model from a run file (YAML): optimizer, schedule, data, checkpoints, metrics')
    .requiredOption('--config <file>', 'run file (YAML)')
    .option('--resume', "continue from the run directory's latest checkpoint")
    .option('--backend <name>', 'webgpu | cpu | auto (overrides the run file)')
    .option('--run-dir <dir>', 'where checkpoints and metrics go (overrides run_dir)')
    .option('--json', 'print a JSON summary at the end')
    .action(async (o: { config: string; resume?: boolean; backend?: string; runDir?: string; json?: boolean }) => {
      const tty = process.stderr.isTTY && !o.json;
      let bar: cliProgress.SingleBar | undefined;
      let t0 = 0;
      let first = 0;
      const summary = await runTraining(o.config, {
        resume: !!o.resume,
        runDir: o.runDir,
        backend: o.backend ? parseBackend(o.backend) : undefined,
        log: (s) => process.stderr.write(`${s}\n`),
        onStep: (m, trainer) => {
          const steps = trainer.o.run.steps;
          if (!t0) {
            t0 = performance.now();
            first = m.step - 1;
          }
          const done = m.step - first;
          const eta = (((performance.now() - t0) / 1000) * (steps - m.step)) / Math.max(1, done);
          if (tty) {
            if (!bar) {
              bar = new cliProgress.SingleBar(
                { format: 'train [{bar}] {value}/{total} loss {loss} {tps} tok/s ETA {eta}s', stream: process.stderr },
                cliProgress.Presets.shades_classic,
              );
              bar.start(steps, first, { loss: '-', tps: '-', eta: '-' });
            }
            bar.update(m.step, { loss: m.loss.toFixed(4), tps: Math.round(m.tokens_per_s), eta: Math.round(eta) });
          } else if (!o.json) {
            const every = Math.max(1, Math.round(steps / 20));
            if (m.step % every === 0 || m.step === steps || m.step === first + 1 || m.eval_loss !== undefined)
              process.stdout.write(`${line(m, steps, eta)}\n`);
          }
        },
      }).finally(() => bar?.stop());
      const { metrics, ...rest } = summary;
      if (o.json) {
        printJson({ ...rest, steps_run: metrics.length });
        return;
      }
      const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(4));
      process.stdout.write(
        `trained steps ${summary.startStep + 1}..${summary.steps}: loss ${f(summary.firstLoss)} -> ${f(summary.lastLoss)}\n` +
          `held-out loss ${f(summary.evalLoss)} nats/token; unigram baseline ${f(summary.unigramEvalNats)} nats/token\n` +
          `checkpoint ${summary.checkpoint ?? 'none'}\n`,
      );
    });
}
