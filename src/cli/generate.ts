/**
 * `kimi-linear generate --model DIR (--prompt TEXT ... | --tokens FILE.json)`: streams text as it is made.
 * Several prompts (repeat --prompt, or several lists in the file, of any lengths) are decoded together;
 * their output is streamed line by line, each line labelled with its sequence.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { generateBatch, type StopReason } from '../generate/generate.js';
import { GpuContext } from '../gpu/context.js';
import { ByteTokenizer } from '../io/tokenizer/bytes.js';
import { applyChatTemplate, loadTokenizer, TOKENIZER_FILES } from '../io/tokenizer/index.js';
import type { Tokenizer } from '../io/tokenizer/types.js';
import { parseMlaCacheDtype, prepareMlaInt8Sgm } from '../kernels/mla/index.js';
import { loadModel } from '../model/load.js';
import { openDevice, parseBackend } from '../runtime/backend.js';
import { acquireOptions, type GpuFlagOptions, gpuFlags, numberOption, printJson } from './shared.js';

async function tokenizerFor(dir: string, vocab: number): Promise<Tokenizer | undefined> {
  try {
    return await loadTokenizer(dir);
  } catch (e) {
    // No tokenizer files at all: a 256-token model reads bytes; any other failure is the user's to see.
    if (!/found none of/.test((e as Error).message)) throw e;
    return vocab === 256 ? new ByteTokenizer() : undefined;
  }
}

/** A JSON list of token-id lists, of any lengths. */
async function readPrompts(file: string, vocab: number): Promise<number[][]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not readable JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(json) || !json.length || !json.every(Array.isArray))
    throw new Error(`${file}: expected a non-empty list of token-id lists, e.g. [[1, 2, 3], [4, 5]]`);
  return (json as unknown[][]).map((row, b) => {
    if (!row.length) throw new Error(`${file}: list ${b} is empty`);
    return row.map((v, t) => {
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= vocab)
        throw new Error(`${file}: list ${b} position ${t}: ${JSON.stringify(v)} is not a token id in [0, ${vocab})`);
      return v as number;
    });
  });
}

const num = numberOption;
const collect = (v: string, prev: string[]) => [...prev, v];

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate from a checkpoint, streaming text as it is produced (several prompts: decoded together)')
    .requiredOption('--model <dir>', 'checkpoint directory')
    .option(
      '--prompt <text>',
      `prompt text; repeat for a batch (needs ${TOKENIZER_FILES.join(' or ')} in the model directory, or a 256-token byte model)`,
      collect,
      [],
    )
    .option('--tokens <file>', 'prompts as a JSON list of token-id lists (any lengths)')
    .option(
      '--chat',
      "wrap each prompt as a user message in the tokenizer's chat template (with the generation prompt)",
    )
    .option('--max-tokens <n>', 'tokens to generate per sequence', num('--max-tokens'), 64)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', num('--temperature'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens', num('--top-k'))
    .option('--top-p <p>', 'keep the smallest set with this probability mass', num('--top-p'))
    .option('--repetition-penalty <r>', 'penalise tokens already in the context', num('--repetition-penalty'))
    .option('--greedy', 'always take the most likely token')
    .option('--stop <ids>', 'comma-separated stop token ids')
    .option('--seed <n>', 'sampling seed (sequence i uses seed + i)', num('--seed'), 0)
    .option(
      '--cache-dtype <d>',
      'MLA latent cache: f32 | bf16 | int8 (per-token absmax codes, ~half of bf16) | f16 (binary16 rows)',
      'bf16',
    )
    .option('--backend <name>', 'webgpu | cpu | auto', 'auto')
    .option(
      '--no-pipeline',
      "read each step's logits back and sample on the host (default on webgpu: tokens chosen on the device, next step recorded before they are read)",
    )
    .option('--json', 'print one JSON object at the end instead of streaming text');
  gpuFlags(cmd).action(async (o: Record<string, unknown> & GpuFlagOptions) => {
    const texts = o.prompt as string[];
    if (!texts.length === !o.tokens)
      throw new Error('generate: give exactly one of --prompt or --tokens (--prompt may be repeated)');
    const cacheDtype = parseMlaCacheDtype('--cache-dtype', o.cacheDtype);
    const device = await openDevice({ backend: parseBackend(o.backend as string), ...acquireOptions(o) });
    // int8 cache: the tensor-core attention kernel where Dawn offers int8 subgroup matrices (--unsafe-apis) and
    // it checks exact against dp4a here (prepareMlaInt8Sgm); dp4a otherwise.
    if (o.cacheDtype === 'int8' && device instanceof GpuContext && device.features.subgroupMatrixInt8)
      await prepareMlaInt8Sgm(device);
    const model = await loadModel(o.model as string, device);
    const tok = await tokenizerFor(o.model as string, model.cfg.vocab_size);
    let prompts: number[][];
    if (texts.length) {
      if (!tok) throw new Error(`generate: ${o.model} has no ${TOKENIZER_FILES.join(' or ')}; pass --tokens instead`);
      prompts = texts.map((t) =>
        o.chat ? applyChatTemplate(tok, [{ role: 'user', content: t }], { addGenerationPrompt: true }) : tok.encode(t),
      );
    } else {
      if (o.chat) throw new Error('generate: --chat needs --prompt text, not --tokens');
      prompts = await readPrompts(o.tokens as string, model.cfg.vocab_size);
    }
    const stop = o.stop
      ? String(o.stop).split(',').map(num('--stop'))
      : [
          model.cfg.eos_token_id,
          tok?.config?.eosTokenId,
          // A chat turn ends with the template's end-of-message marker.
          o.chat ? tok?.tokenId?.('<|im_end|>') : undefined,
        ].filter((x): x is number => typeof x === 'number');
    const it = generateBatch(model, prompts, tok, {
      maxTokens: o.maxTokens as number,
      temperature: o.temperature as number,
      topK: o.topK as number | undefined,
      topP: o.topP as number | undefined,
      repetitionPenalty: o.repetitionPenalty as number | undefined,
      greedy: !!o.greedy,
      seed: o.seed as number,
      stopTokens: [...new Set(stop)],
      cacheDtype,
      // Commander sets pipeline false for --no-pipeline; otherwise generate's default (on for webgpu).
      ...(o.pipeline === false ? { pipeline: false } : {}),
    });
    const many = prompts.length > 1;
    const out = prompts.map((prompt) => ({ prompt, tokens: [] as number[], text: '', stopped: '' as StopReason | '' }));
    // Multi-sequence streaming: whole lines, labelled, as each sequence completes them.
    const pending = prompts.map(() => '');
    const emit = (i: number, s: string, end: boolean) => {
      if (!many) return process.stdout.write(s);
      pending[i] += s;
      const lines = pending[i].split('\n');
      pending[i] = end ? '' : lines.pop()!;
      for (const l of end && lines.at(-1) === '' ? lines.slice(0, -1) : lines) process.stdout.write(`[${i}] ${l}\n`);
    };
    const t0 = performance.now();
    let total = 0;
    for await (const e of it) {
      const r = out[e.sequence];
      if (e.type === 'token') {
        total++;
        r.tokens.push(e.token);
        r.text += e.text;
        if (!o.json) emit(e.sequence, tok ? e.text : `${e.token} `, false);
      } else {
        r.stopped = e.stopped;
        if (!o.json) emit(e.sequence, many ? ` [${r.tokens.length} tokens, ${e.stopped}]` : '', true);
      }
    }
    const ms = performance.now() - t0;
    if (o.json) {
      const common = { backend: device.backend, ms, tokensPerS: (1000 * total) / ms };
      if (!many) printJson({ ...common, ...out[0] });
      else printJson({ ...common, sequences: out });
    } else if (!many) {
      process.stdout.write(
        `\n[${out[0].tokens.length} tokens, ${out[0].stopped}, ${(ms / Math.max(total, 1)).toFixed(1)} ms/token on ${device.backend}]\n`,
      );
    } else {
      process.stdout.write(
        `[${prompts.length} sequences, ${total} tokens in ${(ms / 1000).toFixed(2)} s, ${((1000 * total) / ms).toFixed(1)} tokens/s on ${device.backend}]\n`,
      );
    }
  });
}
