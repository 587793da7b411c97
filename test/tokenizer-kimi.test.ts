import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applyChatTemplate,
  KIMI_PATTERN,
  loadTokenizer,
  renderChatTemplate,
  trainBpe,
} from '../src/io/tokenizer/index.js';
import { FIXTURES } from './helpers.js';

const DIR = `${FIXTURES}/tokenizers/kimi-tiny`;

describe("Kimi's tiktoken.model + tokenizer_config.json (fixture kimi-tiny)", () => {
  it('round-trips text of every kind, and merges frequent pairs into single tokens', async () => {
    const tok = await loadTokenizer(DIR);
    for (const text of [
      'The river ran low.',
      "it's the best; THEY'LL remember",
      '中文和English混合 北京市 Pascal 12345',
      'emoji 🙂 and tabs\t\n\nnew lines',
      '',
    ]) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
    // ' the' is learned from the sample: fewer tokens than bytes.
    expect(tok.encode(' the text').length).toBeLessThan(' the text'.length);
    expect(tok.vocabSize).toBe(313 + 256);
  });

  it("splits like Kimi's pre-tokenizer: Han runs apart from letters, contractions kept, digits by three", () => {
    const split = (t: string) => t.match(new RegExp(KIMI_PATTERN, 'gu'));
    expect(split('中文English混合')).toEqual(['中文', 'English', '混合']);
    expect(split('北京市 Pascal')).toEqual(['北京市', ' Pascal']);
    expect(split("HELLO's world")).toEqual(["HELLO's", ' world']);
    expect(split('1234567')).toEqual(['123', '456', '7']);
    expect(split('CamelCase')).toEqual(['Camel', 'Case']);
  });

  it('special tokens: named ones from added_tokens_decoder, reserved ones, bos/eos; only encoded when asked', async () => {
    const tok = await loadTokenizer(DIR);
    expect(tok.tokenId!('[BOS]')).toBe(313);
    expect(tok.tokenId!('<|im_end|>')).toBe(315);
    expect(tok.tokenId!('<|im_middle|>')).toBe(330);
    expect(tok.tokenId!('<|reserved_token_318|>')).toBe(318);
    expect(tok.config?.bosTokenId).toBe(313);
    expect(tok.config?.eosTokenId).toBe(314);
    expect(tok.encodeWithSpecial!('hi<|im_end|>')).toEqual([...tok.encode('hi'), 315]);
    // As plain text the marker is just characters.
    expect(tok.encode('<|im_end|>')).not.toContain(315);
    expect(tok.decode([...tok.encode('ok'), 315])).toBe('ok<|im_end|>');
  });

  it('renders the chat template to the expected string and ids', async () => {
    const tok = await loadTokenizer(DIR);
    const messages = [{ role: 'user', content: 'Hi there' }];
    const text = renderChatTemplate(tok.config!.chatTemplate!, messages, { addGenerationPrompt: true });
    expect(text).toBe(
      '<|im_system|>system<|im_middle|>You are a helpful assistant<|im_end|>' +
        '<|im_user|>user<|im_middle|>Hi there<|im_end|>' +
        '<|im_assistant|>assistant<|im_middle|>',
    );
    expect(renderChatTemplate(tok.config!.chatTemplate!, messages)).not.toMatch(/assistant<\|im_middle\|>$/);
    const sys = renderChatTemplate(tok.config!.chatTemplate!, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Q' },
      { role: 'assistant', content: 'A' },
    ]);
    expect(sys).toBe(
      '<|im_system|>system<|im_middle|>Be brief.<|im_end|><|im_user|>user<|im_middle|>Q<|im_end|>' +
        '<|im_assistant|>assistant<|im_middle|>A<|im_end|>',
    );
    const ids = applyChatTemplate(tok, messages, { addGenerationPrompt: true });
    expect(ids.slice(0, 1)).toEqual([323]);
    expect(ids.slice(-1)).toEqual([330]);
    expect(tok.decode(ids)).toBe(text);
  });

  it('a directory without tokenizer files, or a config with a bad field, fails naming what it looked for', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'kimi-tok-'));
    await expect(loadTokenizer(empty)).rejects.toThrow(
      new RegExp(`tokenizer directory '${empty}': found none of tokenizer.json, tiktoken.model`),
    );
    const bad = mkdtempSync(join(tmpdir(), 'kimi-tok-'));
    writeFileSync(join(bad, 'tiktoken.model'), 'AA== 0\nnot-a-line\n');
    await expect(loadTokenizer(bad)).rejects.toThrow(/tiktoken.model' line 2: expected '<base64 token> <rank>'/);
    writeFileSync(join(bad, 'tiktoken.model'), 'AA== 0\n');
    writeFileSync(join(bad, 'tokenizer_config.json'), JSON.stringify({ chat_template: 5 }));
    await expect(loadTokenizer(bad)).rejects.toThrow(/tokenizer_config.json: chat_template is number/);
    writeFileSync(join(bad, 'tokenizer_config.json'), JSON.stringify({}));
    const tok = await loadTokenizer(bad);
    expect(() => applyChatTemplate(tok, [{ role: 'user', content: 'x' }])).toThrow(/no chat template/);
  });
});

describe('a tokenizer.json directory with a tokenizer_config.json', () => {
  it('carries the chat template and encodes its special strings as ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-tok-'));
    const bpe = trainBpe(['hello world, hello there'], { vocabSize: 270, specialTokens: ['<|endoftext|>'] });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(bpe.toHuggingFace()));
    const eot = bpe.vocabSize - 1;
    writeFileSync(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify({
        eos_token: { content: '<|endoftext|>' },
        chat_template: [
          { name: 'default', template: '{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}' },
        ],
      }),
    );
    const tok = await loadTokenizer(dir);
    expect(tok.tokenId!('<|endoftext|>')).toBe(eot);
    expect(tok.config?.eosTokenId).toBe(eot);
    const ids = applyChatTemplate(tok, [{ role: 'user', content: 'hello' }]);
    expect(ids).toEqual([...tok.encode('hello'), eot]);
    expect(tok.decode(tok.encode('hello world'))).toBe('hello world');
  });
});
