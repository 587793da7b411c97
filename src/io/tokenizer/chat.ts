/**
 * Chat templates: tokenizer_config.json's Jinja `chat_template` rendered with @huggingface/jinja (the
 * engine transformers.js uses), then encoded with special-token strings turned into their ids.
 */
import { Template } from '@huggingface/jinja';
import type { Tokenizer } from './types.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface ChatOptions {
  /** End with the header of an assistant turn, so the model writes the reply. */
  addGenerationPrompt?: boolean;
  /** Other variables the template reads (tools, ...). */
  extra?: Record<string, unknown>;
}

export function renderChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  opts: ChatOptions & { bosToken?: string; eosToken?: string } = {},
): string {
  let t: Template;
  try {
    t = new Template(template);
  } catch (e) {
    throw new Error(`chat_template does not parse as Jinja: ${(e as Error).message}`);
  }
  return t.render({
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    bos_token: opts.bosToken ?? '',
    eos_token: opts.eosToken ?? '',
    ...opts.extra,
  });
}

/** The tokenizer's chat template applied to `messages`, as token ids. */
export function applyChatTemplate(tok: Tokenizer, messages: readonly ChatMessage[], opts: ChatOptions = {}): number[] {
  const cfg = tok.config;
  if (!cfg?.chatTemplate)
    throw new Error('the tokenizer has no chat template (tokenizer_config.json field chat_template)');
  const text = renderChatTemplate(cfg.chatTemplate, messages, {
    ...opts,
    bosToken: cfg.bosToken,
    eosToken: cfg.eosToken,
  });
  return tok.encodeWithSpecial ? tok.encodeWithSpecial(text) : tok.encode(text);
}

/**
 * encodeWithSpecial for tokenizers whose encoder knows no special tokens: the text is split at the
 * special strings (longest first), which become their ids; the pieces between are encoded normally.
 */
export function withSpecialSplit(tok: Tokenizer, special: ReadonlyMap<string, number>): (text: string) => number[] {
  const names = [...special.keys()].sort((a, b) => b.length - a.length);
  if (!names.length) return (t) => tok.encode(t);
  const re = new RegExp(names.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (text) => {
    const out: number[] = [];
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (m.index > last) out.push(...tok.encode(text.slice(last, m.index)));
      out.push(special.get(m[0])!);
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(...tok.encode(text.slice(last)));
    return out;
  };
}
