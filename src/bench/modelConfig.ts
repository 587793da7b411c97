/**
 * The model configs the whole-model benchmarks (decode, train) run: a config.json given by path or one of
 * the bench's bundled presets, and the all-MLA twin of a hybrid config they compare it against.
 */
import { readFile } from 'node:fs/promises';

/**
 * Parse the config named by `file`, or by `preset` (a key of `presets`, whose values are paths relative to
 * this folder; a preset takes precedence). Errors name the option or the file.
 */
export async function readBenchConfig(
  file: string | undefined,
  preset: string | undefined,
  presets: Record<string, string>,
): Promise<Record<string, unknown>> {
  let path = file;
  if (preset) {
    const rel = presets[preset];
    if (!rel) throw new Error(`--preset: unknown '${preset}' (known: ${Object.keys(presets).join(', ')})`);
    path = new URL(rel, import.meta.url).pathname;
  }
  try {
    return JSON.parse(await readFile(path!, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read the config (${(e as Error).message})`);
  }
}

/** The same model with every layer full attention (MLA), for the hybrid vs all-MLA comparisons. */
export function allMlaConfig(json: Record<string, unknown>): Record<string, unknown> {
  const L = json.num_hidden_layers as number;
  const lac = { ...(json.linear_attn_config as Record<string, unknown>) };
  lac.kda_layers = [];
  lac.full_attn_layers = Array.from({ length: L }, (_, i) => i + 1);
  return { ...json, linear_attn_config: lac };
}
