/** Reading config.json from disk (Node); parsing and validation live in config.ts. */
import { readFile } from 'node:fs/promises';
import { ConfigError, type KimiLinearConfig, parseKimiConfigText } from './config.js';

export async function loadKimiConfig(path: string): Promise<KimiLinearConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${path}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
  }
  return parseKimiConfigText(text, path);
}
