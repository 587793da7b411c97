/** `kimi-linear generate --model DIR (--prompt TEXT | --tokens FILE.json)`: streams text as it is made. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { generate } from '../generate/generate.js';
import { ByteTokenizer } from '../io/tokenizer/bytes.js';
import { loadTokenizer } from '../io/tokenizer/index.js';
import type { Tokenizer } from '../io/tokenizer/types.js';
import { loadModel } from '../model/load.js';
import { openDevice, parseBackend } from '../runtime/backend.js';
import { readTokenBatch } from './forward.js';
import { acquireOptions, type GpuFlagOptions, gpuFlags, numberOption, printJson } from './shared.js';

async function tokenizerFor(dir: string, vocab: number): Promise<Tokenizer | undefined> {
  for (const f of ['tokenizer.json', 'tiktoken.model']) {
    if (existsSync(`${dir}/${f}`)) return loadTokenizer(`${dir}/${f}`);
  }
  return vocab === 256 ? new ByteTokenizer() : undefined;
}

const num = numberOption;

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate from a checkpoint, streaming text as it is produced')
    .requiredOption('--model <dir>', 'checkpoint directory')
    .option('--prompt <text>', 'prompt text (needs a tokenizer in the model directory, or a 256-token byte model)')
    .option('--tokens <file>', 'prompt as a JSON list holding one token-id list')
    .option('--max-tokens <n>', 'tokens to generate', num('--max-tokens'), 64)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', num('--temperature'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens', num('--top-k'))
    .option('--top-p <p>', 'keep the smallest set with this probability mass', num('--top-p'))
    .option('--repetition-penalty <r>', 'penalise tokens already in the context', num('--repetition-penalty'))
    .option('--greedy', 'always take the most likely token')
    .option('--stop <ids>', 'comma-separated stop token ids')
    .option('--seed <n>', 'sampling seed', num('--seed'), 0)
    .option('--cache-dtype <d>', 'MLA latent cache: f32 | bf16', 'bf16')
    .option('--backend <name>', 'webgpu | cpu | auto', 'auto')
    .option('--json', 'print one JSON object at the end instead of streaming text');
  gpuFlags(cmd).action(async (o: Record<string, unknown> & GpuFlagOptions) => {
    if (!o.prompt === !o.tokens) throw new Error('generate: give exactly one of --prompt or --tokens');
    if (o.cacheDtype !== 'f32' && o.cacheDtype !== 'bf16')
      throw new Error(`--cache-dtype: '${o.cacheDtype}' is not f32 or bf16`);
    const device = await openDevice({ backend: parseBackend(o.backend as string), ...acquireOptions(o) });
    const model = await loadModel(o.model as string, device);
    const tok = await tokenizerFor(o.model as string, model.cfg.vocab_size);
    let prompt: number[];
    if (o.prompt !== undefined) {
      if (!tok) throw new Error(`generate: ${o.model} has no tokenizer.json or tiktoken.model; pass --tokens instead`);
      prompt = tok.encode(o.prompt as string);
    } else {
      const { ids, B } = await readTokenBatch(o.tokens as string, model.cfg.vocab_size);
      if (B !== 1) throw new Error(`generate: ${o.tokens} holds ${B} prompts; give one`);
      prompt = Array.from(ids);
    }
    const stop = o.stop
      ? String(o.stop).split(',').map(num('--stop'))
      : [model.cfg.eos_token_id].filter((x) => typeof x === 'number');
    const it = generate(model, prompt, tok, {
      maxTokens: o.maxTokens as number,
      temperature: o.temperature as number,
      topK: o.topK as number | undefined,
      topP: o.topP as number | undefined,
      repetitionPenalty: o.repetitionPenalty as number | undefined,
      greedy: !!o.greedy,
      seed: o.seed as number,
      stopTokens: stop as number[],
      cacheDtype: o.cacheDtype as 'f32' | 'bf16',
    });
    const tokens: number[] = [];
    let text = '';
    const t0 = performance.now();
    let r = await it.next();
    while (!r.done) {
      tokens.push(r.value.token);
      text += r.value.text;
      if (!o.json) process.stdout.write(tok ? r.value.text : `${r.value.token} `);
      r = await it.next();
    }
    const ms = performance.now() - t0;
    if (o.json) printJson({ backend: device.backend, prompt, tokens, text, stopped: r.value.stopped, ms });
    else
      process.stdout.write(
        `\n[${tokens.length} tokens, ${r.value.stopped}, ${(ms / Math.max(tokens.length, 1)).toFixed(1)} ms/token on ${device.backend}]\n`,
      );
  });
}
