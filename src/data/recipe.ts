/**
 * Dataset recipes (YAML), validated with zod; errors name the field path, the value and what was expected.
 * Paths in a recipe are relative to the recipe file.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { type CleanConfig, DEFAULT_NORMALIZE, DEFAULT_PII, DEFAULT_QUALITY, type QualityConfig } from './clean.js';
import { DEFAULT_DEDUP, type DedupConfig, validateDedup } from './dedup.js';
import type { SourceSpec } from './pipeline.js';

const num = z.number().nullable();
const Quality = z
  .object({
    min_chars: num,
    max_chars: num,
    min_words: num,
    max_words: num,
    min_mean_word_length: num,
    max_mean_word_length: num,
    max_symbol_word_ratio: num,
    max_digit_ratio: num,
    max_symbol_char_ratio: num,
    min_alpha_word_ratio: num,
    max_bullet_lines_ratio: num,
    max_ellipsis_lines_ratio: num,
    max_dup_line_ratio: num,
    max_dup_line_char_ratio: num,
    max_top_ngram_char_ratio: z.record(z.string().regex(/^\d+$/), z.number()).nullable(),
    max_dup_ngram_char_ratio: z.record(z.string().regex(/^\d+$/), z.number()).nullable(),
  })
  .partial()
  .strict();

const Source = z
  .object({
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, _ . - only'),
    paths: z.array(z.string()).min(1),
    kind: z.enum(['text', 'sft', 'preference']).default('text'),
    text_field: z.string().default('text'),
    template: z.string().optional(),
    prompt: z.string().default('{prompt}'),
    response: z.string().default('{response}'),
    chosen: z.string().default('{chosen}'),
    rejected: z.string().default('{rejected}'),
    quality: z.boolean().default(true),
  })
  .strict();

const MixEntry = z
  .object({
    source: z.string(),
    weight: z.number().positive().optional(),
    target_tokens: z.number().int().positive().optional(),
    epochs: z.number().positive().optional(),
    max_epochs: z.number().positive().default(1),
  })
  .strict()
  .refine((m) => [m.weight, m.target_tokens, m.epochs].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of weight, target_tokens, epochs',
  });

const Stage = z
  .object({
    total_tokens: z.number().int().positive().optional(),
    mix: z.array(MixEntry).min(1),
  })
  .strict();

export const RecipeSchema = z
  .object({
    version: z.literal(1).default(1),
    name: z.string().default('dataset'),
    seed: z.number().int().nonnegative().default(0),
    parent: z.string().optional(),
    sources: z.array(Source).min(1),
    clean: z
      .object({
        normalize: z
          .object({
            unicode: z.enum(['NFC', 'NFKC', 'none']).default('NFC'),
            control_chars: z.boolean().default(true),
            whitespace: z.boolean().default(true),
          })
          .strict()
          .prefault({}),
        quality: Quality.prefault({}),
        pii: z
          .object({
            email: z.boolean().default(true),
            phone: z.boolean().default(true),
            ip: z.boolean().default(true),
            card: z.boolean().default(true),
            replacement: z.string().default('<{kind}>'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    dedup: z
      .object({
        exact: z.boolean().default(true),
        near: z.boolean().default(true),
        threshold: z.number().gt(0).lte(1).default(0.8),
        shingle: z.number().int().positive().default(5),
        permutations: z.number().int().positive().default(128),
        bands: z.number().int().positive().default(16),
      })
      .strict()
      .prefault({}),
    tokenizer: z
      .object({
        path: z.string().optional(),
        train: z
          .object({
            vocab_size: z.number().int().min(260),
            sample_mb: z.number().positive().default(4),
            min_frequency: z.number().int().positive().default(2),
            special_tokens: z.array(z.string()).default(['<|endoftext|>']),
          })
          .strict()
          .optional(),
        eos: z.string().default('<|endoftext|>'),
        append_eos: z.boolean().default(true),
      })
      .strict()
      .refine((t) => (t.path === undefined) !== (t.train === undefined), {
        message: 'give exactly one of path, train',
      }),
    output: z
      .object({
        shard_tokens: z
          .number()
          .int()
          .positive()
          .default(1 << 28),
        token_dtype: z.enum(['auto', 'uint16', 'uint32']).default('auto'),
      })
      .strict()
      .prefault({}),
    stages: z
      .record(z.string().regex(/^[\w-]+$/), Stage)
      .refine((s) => Object.keys(s).length > 0, { message: 'at least one stage' }),
  })
  .strict();

export type RecipeInput = z.infer<typeof RecipeSchema>;

export interface Recipe extends RecipeInput {
  /** Absolute path of the recipe file and its folder (relative paths resolve against it). */
  file: string;
  dir: string;
  /** sha256 of the canonical (parsed, defaults filled) recipe, independent of formatting and comments. */
  sha256: string;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? 'nothing' : s.length > 60 ? `${s.slice(0, 60)}...` : s;
}

/** Parses and validates; the Error names the file, the field path, the value found and what was expected. */
export function parseRecipe(text: string, file: string): Recipe {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new Error(`recipe ${file}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  const r = RecipeSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const path = i.path.map(String).join('.') || '(top level)';
      let v: unknown = raw;
      for (const k of i.path)
        v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
      return `${path}: ${i.message} (found ${describe(v)})`;
    });
    throw new Error(`recipe ${file}: ${lines.join('; ')}`);
  }
  const data = r.data;
  const names = new Set<string>();
  for (const s of data.sources) {
    if (names.has(s.name)) throw new Error(`recipe ${file}: sources: duplicate name '${s.name}'`);
    names.add(s.name);
  }
  for (const [stage, st] of Object.entries(data.stages)) {
    st.mix.forEach((m, i) => {
      if (!names.has(m.source)) {
        throw new Error(
          `recipe ${file}: stages.${stage}.mix.${i}.source: '${m.source}' is not a source (have ${[...names].join(', ')})`,
        );
      }
    });
  }
  try {
    validateDedup(dedupConfig(data as Recipe));
  } catch (e) {
    throw new Error(`recipe ${file}: ${(e as Error).message}`);
  }
  const abs = resolve(file);
  const sha256 = createHash('sha256').update(canonicalJson(data)).digest('hex');
  return { ...data, file: abs, dir: dirname(abs), sha256 };
}

export function loadRecipe(file: string): Recipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`recipe ${file}: cannot read (${(e as Error).message})`);
  }
  return parseRecipe(text, file);
}

/** JSON with sorted keys: the form that is hashed. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}

export function cleanConfig(r: RecipeInput): CleanConfig {
  const n = r.clean.normalize;
  const quality: QualityConfig = { ...DEFAULT_QUALITY, ...(r.clean.quality as Partial<QualityConfig>) };
  return {
    normalize: { ...DEFAULT_NORMALIZE, unicode: n.unicode, controlChars: n.control_chars, whitespace: n.whitespace },
    quality,
    pii: { ...DEFAULT_PII, ...r.clean.pii },
  };
}

export function dedupConfig(r: RecipeInput): DedupConfig {
  return { ...DEFAULT_DEDUP, ...r.dedup, seed: r.seed + 1 };
}

export function sourceSpecs(r: RecipeInput): SourceSpec[] {
  return r.sources.map((s) => ({ ...s }));
}

export function resolvePath(r: Recipe, p: string): string {
  return resolve(r.dir, p);
}
