/** Options and output helpers every command shares. */
import type { Command } from 'commander';
import type { AcquireOptions, DawnToggle } from '../gpu/acquire.js';

export interface GpuFlagOptions {
  unsafeApis?: boolean;
  disableRobustness?: boolean;
  powerPreference?: string;
}

/** Adds the opt-in Dawn toggles and adapter choice to a command. */
export function gpuFlags(cmd: Command): Command {
  return cmd
    .option('--unsafe-apis', "enable Dawn's allow_unsafe_apis (experimental features such as subgroup matrices)")
    .option('--disable-robustness', "enable Dawn's disable_robustness (no bounds clamping: faster, unsafe on bad input)")
    .option('--power-preference <p>', 'adapter choice: high-performance | low-power', 'high-performance');
}

export function acquireOptions(opts: GpuFlagOptions): AcquireOptions {
  const toggles: DawnToggle[] = [];
  if (opts.unsafeApis) toggles.push('allow_unsafe_apis');
  if (opts.disableRobustness) toggles.push('disable_robustness');
  const pp = opts.powerPreference;
  if (pp !== undefined && pp !== 'high-performance' && pp !== 'low-power') {
    throw new Error(`--power-preference: '${pp}' is not high-performance or low-power`);
  }
  return { toggles, powerPreference: pp as GPUPowerPreference | undefined };
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
