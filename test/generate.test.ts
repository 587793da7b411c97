import { describe, expect, it } from 'vitest';
import { generate } from '../src/generate/generate.js';
import { argmax } from '../src/generate/sampler.js';
import { ByteTokenizer } from '../src/io/tokenizer/bytes.js';
import { loadModel } from '../src/model/load.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { cli, FIXTURES } from './helpers.js';

describe('generate', () => {
  it('greedy tokens are the argmax of the full forward over prompt + generated text', async () => {
    const model = await loadModel(`${FIXTURES}/tiny-kimi`, cpu);
    const tok = new ByteTokenizer();
    const prompt = tok.encode('The river ran low');
    const got: number[] = [];
    for await (const t of generate(model, prompt, tok, { greedy: true, maxTokens: 8 })) got.push(t.token);
    expect(got).toHaveLength(8);
    const all = [...prompt, ...got];
    const { logits } = model.forward(cpu.fromHost(Int32Array.from(all), [1, all.length], 'i32'));
    const l = await logits.toFloat32();
    for (let i = 0; i < got.length; i++) {
      const t = prompt.length - 1 + i;
      expect(argmax(l.subarray(t * 256, (t + 1) * 256)), `token ${i}`).toBe(got[i]);
    }
  });

  it('the same seed repeats the same sample; a stop token ends it', async () => {
    const model = await loadModel(`${FIXTURES}/tiny-kimi`, cpu);
    const run = async (seed: number, stop?: number[]) => {
      const out: number[] = [];
      const it = generate(model, [1, 2, 3], undefined, {
        seed,
        temperature: 1.2,
        topK: 20,
        maxTokens: 6,
        stopTokens: stop,
      });
      let r = await it.next();
      while (!r.done) {
        out.push(r.value.token);
        r = await it.next();
      }
      return { out, stopped: r.value.stopped };
    };
    const a = await run(5);
    expect((await run(5)).out).toEqual(a.out);
    expect(a.stopped).toBe('max_tokens');
    const s = await run(5, [a.out[2]]);
    expect(s.out).toEqual(a.out.slice(0, 3));
    expect(s.stopped).toBe('stop_token');
  });

  it('the CLI streams from the bundled checkpoint and refuses conflicting flags', async () => {
    const ok = await cli(
      'generate',
      '--model',
      `${FIXTURES}/tiny-kimi`,
      '--prompt',
      'Hi',
      '--max-tokens',
      '4',
      '--greedy',
      '--json',
      '--backend',
      'cpu',
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).tokens).toHaveLength(4);
    const bad = await cli('generate', '--model', `${FIXTURES}/tiny-kimi`, '--backend', 'cpu');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/exactly one of --prompt or --tokens/);
  });
});
