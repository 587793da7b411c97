/**
 * Crash safety, for real: the CLI trains 20 steps straight; a second run of the same file is SIGKILLed
 * right after its step-10 checkpoint lands, then resumed with --resume for the other 10 steps. Every
 * step's loss (and the final held-out loss) must match the straight run to 1e-6 on the cpu backend,
 * and the checkpoint `latest` named at the moment of the kill must load.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/load.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { cli, FIXTURES, ROOT } from './helpers.js';

function runFile(dir: string): string {
  const text = readFileSync(join(FIXTURES, 'train/resume.yaml'), 'utf8')
    .replace(
      'model: {config: micro-model.json}',
      `run_dir: ${dir}\nmodel: {config: ${join(FIXTURES, 'train/micro-model.json')}}`,
    )
    .replace('../corpus/', `${join(FIXTURES, 'corpus')}/`);
  const file = join(dir, 'run.yaml');
  writeFileSync(file, text);
  return file;
}

function losses(dir: string): Map<number, { loss: number; eval?: number }> {
  const out = new Map<number, { loss: number; eval?: number }>();
  for (const l of readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!l.trim()) continue;
    const m = JSON.parse(l) as { step: number; loss: number; eval_loss?: number };
    expect(out.has(m.step), `metrics.jsonl has step ${m.step} twice`).toBe(false);
    out.set(m.step, { loss: m.loss, eval: m.eval_loss });
  }
  return out;
}

describe('train: kill -9 after the step-10 checkpoint, resume, same losses', () => {
  it('20 straight steps == 10 + SIGKILL + resume + 10', async () => {
    const a = mkdtempSync(join(tmpdir(), 'kimi-train-a-'));
    const b = mkdtempSync(join(tmpdir(), 'kimi-train-b-'));
    const straight = await cli('train', '--config', runFile(a), '--backend', 'cpu');
    expect(straight.code, straight.stderr).toBe(0);

    const latest = join(b, 'checkpoints', 'latest');
    // node itself with tsx as a loader (the tsx binary would run the CLI in a grandchild SIGKILL misses).
    const args = [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'train',
      '--config',
      runFile(b),
      '--backend',
      'cpu',
    ];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'ignore' });
    const exited = new Promise<string | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
    const deadline = Date.now() + 50_000;
    while (!(existsSync(latest) && readFileSync(latest, 'utf8').trim() === 'step-00000010')) {
      if (Date.now() > deadline || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    expect(await exited, 'the run must die by SIGKILL, not finish').toBe('SIGKILL');
    expect(readFileSync(latest, 'utf8').trim()).toBe('step-00000010');
    expect(existsSync(join(b, 'checkpoints', 'step-00000020'))).toBe(false);
    // What `latest` names after the crash is a complete checkpoint.
    const m = await loadModel(join(b, 'checkpoints', 'step-00000010'), cpu);
    m.weights.dispose();

    const resumed = await cli('train', '--config', join(b, 'run.yaml'), '--backend', 'cpu', '--resume');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('trained steps 11..20');

    const la = losses(a);
    const lb = losses(b);
    expect([...la.keys()]).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect([...lb.keys()].sort((x, y) => x - y)).toEqual([...la.keys()]);
    for (const [step, v] of la) {
      expect(Math.abs(lb.get(step)!.loss - v.loss), `step ${step}`).toBeLessThanOrEqual(1e-6);
    }
    expect(la.get(20)!.loss).toBeLessThan(la.get(1)!.loss);
    expect(la.get(20)!.eval).toBeDefined();
    expect(Math.abs(lb.get(20)!.eval! - la.get(20)!.eval!)).toBeLessThanOrEqual(1e-6);
  });

  it('--resume refuses a run file whose settings changed', async () => {
    const a = mkdtempSync(join(tmpdir(), 'kimi-train-c-'));
    const file = runFile(a);
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('steps: 20', 'steps: 2').replace('interval: 10}', 'interval: 1}'),
    );
    expect((await cli('train', '--config', file, '--backend', 'cpu')).code).toBe(0);
    writeFileSync(file, readFileSync(file, 'utf8').replace('seed: 7', 'seed: 8'));
    const r = await cli('train', '--config', file, '--backend', 'cpu', '--resume');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/resume: the checkpoint was made with run settings \w+, this run file has \w+/);
    const again = await cli('train', '--config', file, '--backend', 'cpu');
    expect(again.stderr).toMatch(/already holds checkpoints .*pass --resume/);
  });
});
