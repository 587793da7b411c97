import { describe, expect, it } from 'vitest';
import {
  cleanDocument,
  DEFAULT_CLEAN,
  DEFAULT_NORMALIZE,
  DEFAULT_PII,
  DEFAULT_QUALITY,
  emptyPiiCounts,
  luhnValid,
  normalizeText,
  qualityCheck,
  scrubPii,
} from '../src/data/clean.js';
import { CorpusGenerator } from '../src/data/generate.js';

const prose = new CorpusGenerator({ seed: 2, minWords: 120, maxWords: 121 }).distinct();

describe('normalisation', () => {
  it('NFC vs NFKC, control characters, whitespace', () => {
    const s = 'e\u0301cole \uff21\uff22 \ufb01\u0007ne\r\n\r\n\r\n\r\nnext   line \t end  ';
    expect(normalizeText(s, DEFAULT_NORMALIZE)).toBe('\u00e9cole \uff21\uff22 \ufb01ne\n\nnext line end');
    expect(normalizeText(s, { ...DEFAULT_NORMALIZE, unicode: 'NFKC' })).toBe('\u00e9cole AB fine\n\nnext line end');
    expect(normalizeText(s, { unicode: 'none', controlChars: false, whitespace: false })).toBe(s);
  });
});

describe('quality rules', () => {
  it('passes ordinary prose', () => {
    expect(qualityCheck(normalizeText(prose, DEFAULT_NORMALIZE), DEFAULT_QUALITY)).toBeNull();
  });
  it.each([
    ['min_words', 'too short here'],
    ['max_symbol_char_ratio', Array.from({ length: 40 }, () => 'word $$$ %%% @@@ ^^^').join(' ')],
    ['max_digit_ratio', Array.from({ length: 40 }, () => 'a 1234567 89012').join(' ')],
    ['max_symbol_word_ratio', Array.from({ length: 30 }, () => 'some words #tag').join(' ')],
    [
      'max_bullet_lines_ratio',
      Array.from(
        { length: 30 },
        (_, i) => `\u2022 the item in this list is about rivers and hills and lakes r${i}`,
      ).join('\n'),
    ],
    [
      'max_ellipsis_lines_ratio',
      Array.from(
        { length: 30 },
        (_, i) => `this line about the rivers and hills trails off at the end r${i} and then...`,
      ).join('\n'),
    ],
    ['max_dup_line_ratio', `${prose}\n${Array.from({ length: 30 }, () => 'the same line again and again').join('\n')}`],
    ['min_mean_word_length', Array.from({ length: 60 }, () => 'a b c of to').join(' ')],
    ['max_top_ngram_char_ratio_2', `${Array.from({ length: 40 }, (_, i) => `lorem ipsum w${i}x`).join(' ')}`],
    ['max_dup_ngram_char_ratio_5', `${prose} ${prose.split(' ').slice(0, 60).join(' ')}`],
  ])('%s', (rule, text) => {
    expect(qualityCheck(text, DEFAULT_QUALITY)).toBe(rule);
  });
  it('a rule set to null is off', () => {
    expect(qualityCheck('too short here', { ...DEFAULT_QUALITY, min_words: null, min_chars: null })).not.toBe(
      'min_words',
    );
  });
});

describe('PII', () => {
  it('scrubs e-mail, phone, IP and Luhn-valid cards, with counts', () => {
    const counts = emptyPiiCounts();
    const t = scrubPii(
      'Mail jane.doe@example.com or call +1 (555) 123-4567; host 192.168.1.20; card 4111 1111 1111 1111; order 1234 5678 9012 3456.',
      DEFAULT_PII,
      counts,
    );
    expect(t).toBe('Mail <email> or call <phone>; host <ip>; card <card>; order 1234 5678 9012 3456.');
    expect(counts).toEqual({ email: 1, phone: 1, ip: 1, card: 1 });
  });
  it('Luhn', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('5500-0000-0000-0004')).toBe(true);
  });
  it('cleanDocument: normalise, scrub, then judge', () => {
    const counts = emptyPiiCounts();
    const r = cleanDocument(`  ${prose} write to a@b.org  `, DEFAULT_CLEAN, counts);
    expect(r.drop).toBeNull();
    expect(r.text.endsWith('write to <email>')).toBe(true);
    expect(cleanDocument(' \u0000 ', DEFAULT_CLEAN, counts).drop).toBe('empty');
  });
});
