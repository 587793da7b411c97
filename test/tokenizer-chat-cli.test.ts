import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors, type TensorData, writeSafetensors } from '../src/io/safetensors/index.js';
import { applyChatTemplate, loadTokenizer } from '../src/io/tokenizer/index.js';
import { Rng } from '../src/util/random.js';
import { cli, FIXTURES } from './helpers.js';

const TOK = `${FIXTURES}/tokenizers/kimi-tiny`;

/** tiny-kimi with its vocabulary widened to the kimi-tiny tokenizer's (new embedding and head rows random). */
async function tinyModelWithKimiTokenizer(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'kimi-chat-'));
  const tok = await loadTokenizer(TOK);
  const V = tok.vocabSize;
  const cfg = JSON.parse(readFileSync(`${FIXTURES}/tiny-kimi/config.json`, 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, vocab_size: V, eos_token_id: 314 }));
  const f = await openSafetensors(`${FIXTURES}/tiny-kimi/model.safetensors`);
  const out = new Map<string, TensorData>();
  const rng = new Rng(4);
  for (const name of f.names) {
    const t = await f.readHost(name);
    if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') {
      const D = t.shape[1];
      const wide = new Float32Array(V * D);
      wide.set(t.data as Float32Array);
      wide.set(
        rng.normalArray((V - t.shape[0]) * D).map((x) => x * 0.02),
        t.shape[0] * D,
      );
      out.set(name, { dtype: 'f32', shape: [V, D], data: wide });
    } else out.set(name, { dtype: t.dtype, shape: t.shape, data: t.data as ArrayBufferView });
  }
  await f.close();
  await writeSafetensors(join(dir, 'model.safetensors'), out);
  for (const file of ['tiktoken.model', 'tokenizer_config.json']) copyFileSync(join(TOK, file), join(dir, file));
  return dir;
}

describe('generate --chat with a Kimi tokenizer in the model directory', () => {
  it('encodes each prompt through the chat template (special ids), and decodes text per sequence', async () => {
    const dir = await tinyModelWithKimiTokenizer();
    const base = ['generate', '--model', dir, '--greedy', '--max-tokens', '4', '--backend', 'cpu', '--json'];
    const r = await cli(...base, '--chat', '--prompt', 'Hi there', '--prompt', 'The river');
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { sequences: { prompt: number[]; tokens: number[]; text: string }[] };
    const tok = await loadTokenizer(TOK);
    for (const [i, text] of ['Hi there', 'The river'].entries()) {
      const want = applyChatTemplate(tok, [{ role: 'user', content: text }], { addGenerationPrompt: true });
      expect(got.sequences[i].prompt).toEqual(want);
      expect(got.sequences[i].prompt.slice(-1)).toEqual([tok.tokenId!('<|im_middle|>')]);
      expect(got.sequences[i].text).toBe(tok.decode(got.sequences[i].tokens));
    }
    // Without --chat the prompt is the plain text's tokens.
    const plain = await cli(...base, '--prompt', 'Hi there');
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout).prompt).toEqual(tok.encode('Hi there'));
  });
});
