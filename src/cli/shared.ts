/** Options and output helpers every command shares. */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { type AcquireOptions, type DawnToggle, parseDawnToggles } from '../gpu/acquire.js';

export interface GpuFlagOptions {
  unsafeApis?: boolean;
  disableRobustness?: boolean;
  skipValidation?: boolean;
  dawnToggles?: string;
  dawnTogglesOff?: string;
  f16?: boolean;
  powerPreference?: string;
}

/** Adds the opt-in Dawn toggles and adapter choice to a command. */
export function gpuFlags(cmd: Command): Command {
  return cmd
    .option('--unsafe-apis', "enable Dawn's allow_unsafe_apis (experimental features such as subgroup matrices)")
    .option(
      '--disable-robustness',
      "enable Dawn's disable_robustness (no bounds clamping: faster, unsafe on bad input)",
    )
    .option(
      '--skip-validation',
      "enable Dawn's skip_validation (no per-command validation: less host time per dispatch)",
    )
    .option(
      '--dawn-toggles <names>',
      'more Dawn toggles, comma-separated (see `kimi-linear info --toggles` for the known ones and which are safe)',
    )
    .option(
      '--dawn-toggles-off <names>',
      "Dawn toggles to turn off, comma-separated (e.g. use_vulkan_zero_initialize_workgroup_memory_extension, on by Dawn's default where the driver has it)",
    )
    .option(
      '--f16',
      'shader-f16 where Dawn withholds it (vulkan_enable_f16_on_nvidia: NVIDIA over Vulkan); with --unsafe-apis the f16 tensor cores the opt-in --fwd-tc16-* kernels use',
    )
    .option('--power-preference <p>', 'adapter choice: high-performance | low-power', 'high-performance');
}

export function acquireOptions(opts: GpuFlagOptions): AcquireOptions {
  const toggles: DawnToggle[] = [];
  if (opts.unsafeApis) toggles.push('allow_unsafe_apis');
  if (opts.disableRobustness) toggles.push('disable_robustness');
  if (opts.skipValidation) toggles.push('skip_validation');
  if (opts.f16) toggles.push('vulkan_enable_f16_on_nvidia');
  if (opts.dawnToggles) {
    for (const t of parseDawnToggles(opts.dawnToggles)) if (!toggles.includes(t)) toggles.push(t);
  }
  const disabledToggles = opts.dawnTogglesOff ? parseDawnToggles(opts.dawnTogglesOff, '--dawn-toggles-off') : [];
  for (const t of disabledToggles) {
    if (toggles.includes(t)) throw new Error(`--dawn-toggles-off: '${t}' is also turned on (--dawn-toggles or a flag)`);
  }
  const pp = opts.powerPreference;
  if (pp !== undefined && pp !== 'high-performance' && pp !== 'low-power') {
    throw new Error(`--power-preference: '${pp}' is not high-performance or low-power`);
  }
  return { toggles, disabledToggles, powerPreference: pp as GPUPowerPreference | undefined };
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain table for terminal output (colour only on a TTY); numbers shown to 4 significant digits. */
export function renderTable(rows: readonly Record<string, unknown>[]): string {
  if (!rows.length) return '(no rows)';
  const head = Object.keys(rows[0]);
  const color = process.stdout.isTTY;
  const t = new Table({ head, style: color ? undefined : { head: [], border: [] } });
  for (const r of rows) {
    t.push(head.map((k) => (typeof r[k] === 'number' ? Number((r[k] as number).toPrecision(4)) : String(r[k] ?? ''))));
  }
  return t.toString();
}

/** Commander option parsers that reject what is not a number, naming the option. */
export function intOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${name}: '${v}' is not an integer`);
    return n;
  };
}

export function numberOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${name}: '${v}' is not a number`);
    return n;
  };
}
