/**
 * Training from a versioned token dataset (src/data): the packed loader's position is saved in the
 * checkpoint, so 4 straight steps equal 2 steps + resume + 2 (same batches, same losses), and the
 * checkpoint carries the dataset's tokenizer for generate.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runTraining } from '../src/train/run.js';
import { cli, FIXTURES } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kimi-train-ds-'));
const dataset = join(dir, 'dataset');

function runFile(name: string, steps: number, interval: number): string {
  const model = JSON.parse(readFileSync(join(FIXTURES, 'train/micro-model.json'), 'utf8'));
  model.vocab_size = 512; // the recipe's BPE has 400 tokens
  const text = [
    `run_dir: ${join(dir, name)}`,
    `model: {config: ${JSON.stringify(model)}}`,
    `tokenizer: {path: ${join(dataset, 'tokenizer.json')}}`,
    `data: {dataset: ${dataset}, stage: pretrain, eval_files: [${join(FIXTURES, 'corpus/notes.jsonl')}]}`,
    'seq_len: 16',
    'batch: 2',
    `steps: ${steps}`,
    'schedule: {kind: cosine, warmup_steps: 1}',
    `checkpoint: {interval: ${interval}}`,
  ].join('\n');
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

describe('train from a token dataset', () => {
  beforeAll(async () => {
    const r = await cli('data', 'build', '--recipe', join(FIXTURES, 'corpus/recipe.yaml'), '--out', dataset);
    expect(r.code, r.stderr).toBe(0);
  });

  it('4 straight steps == 2 + resume + 2 (loader state in the checkpoint)', async () => {
    const a = await runTraining(runFile('a', 4, 4), { backend: 'cpu' });
    const bFile = runFile('b', 4, 2);
    // The first run dies during step 3, after the step-2 checkpoint (its step-3 metric line is dropped on resume).
    const b1 = await runTraining(bFile, {
      backend: 'cpu',
      onStep: (m) => {
        if (m.step === 3) throw new Error('died in step 3');
      },
    }).catch((e: Error) => e);
    expect((b1 as Error).message).toBe('died in step 3');
    const state = JSON.parse(readFileSync(join(dir, 'b/checkpoints/step-00000002/trainer_state.json'), 'utf8'));
    expect(state.data_state).toMatchObject({ stage: 'pretrain', step: 2, seq_len: 16, batch_size: 2 });
    expect(existsSync(join(dir, 'b/checkpoints/step-00000002/tokenizer.json'))).toBe(true);
    const b2 = await runTraining(bFile, { backend: 'cpu', resume: true });
    expect(b2.startStep).toBe(2);
    const la = a.metrics.map((m) => m.loss);
    const lb = readFileSync(join(dir, 'b/metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).loss as number);
    expect(lb.length).toBe(4);
    for (const [i, l] of lb.entries()) expect(Math.abs(l - la[i]), `step ${i + 1}`).toBeLessThanOrEqual(1e-6);
  });
});
