/** `kimi-linear info`: what this machine offers (adapter, features, limits) and which backend runs. */
import type { Command } from 'commander';
import { DAWN_TOGGLES } from '../gpu/acquire.js';
import { GpuContext } from '../gpu/context.js';
import { openDevice, parseBackend } from '../runtime/backend.js';
import { printJson, gpuFlags, type GpuFlagOptions, acquireOptions } from './shared.js';

export function registerInfo(program: Command): void {
  const cmd = program
    .command('info')
    .description('show the WebGPU adapter, its features and limits, and the backend commands will use')
    .option('--backend <name>', 'webgpu | cpu | auto', 'auto')
    .option('--json', 'print a JSON object')
    .option(
      '--toggles',
      'list the Dawn toggles --dawn-toggles accepts, whether each is safe, and why one would use it',
    );
  gpuFlags(cmd).action(async (opts: { backend: string; json?: boolean; toggles?: boolean } & GpuFlagOptions) => {
    if (opts.toggles) {
      if (opts.json) return printJson(DAWN_TOGGLES);
      for (const [name, t] of Object.entries(DAWN_TOGGLES)) {
        console.log(`${name.padEnd(54)} ${t.safe ? 'safe  ' : 'UNSAFE'} ${t.why}`);
      }
      return;
    }
    const device = await openDevice({ backend: parseBackend(opts.backend), ...acquireOptions(opts) });
    const out: Record<string, unknown> = { backend: device.backend };
    if (device instanceof GpuContext) {
      const limits: Record<string, number> = {};
      const l = device.limits as unknown as Record<string, number>;
      for (const k of [
        'maxBufferSize',
        'maxStorageBufferBindingSize',
        'maxComputeWorkgroupStorageSize',
        'maxComputeInvocationsPerWorkgroup',
        'maxComputeWorkgroupSizeX',
        'maxComputeWorkgroupsPerDimension',
        'maxStorageBuffersPerShaderStage',
        'minStorageBufferOffsetAlignment',
        'minUniformBufferOffsetAlignment',
      ])
        limits[k] = l[k];
      out.adapter = device.adapterInfo;
      out.runtime = device.acquired.runtime;
      out.features = device.features;
      out.allFeatures = [...device.acquired.features].sort();
      out.toggles = device.acquired.toggles;
      out.subgroupMatrixConfigs = device.acquired.subgroupMatrixConfigs.map(
        (c) => `${c.componentType} -> ${c.resultComponentType} ${c.M}x${c.N}x${c.K}`,
      );
      out.limits = limits;
      device.destroy();
    } else {
      out.note = 'no WebGPU adapter in use: ops run their plain-TS references';
    }
    if (opts.json) return printJson(out);
    for (const [k, v] of Object.entries(out)) {
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        console.log(`${k}:`);
        for (const [k2, v2] of Object.entries(v)) console.log(`  ${k2.padEnd(36)} ${String(v2)}`);
      } else console.log(`${k.padEnd(38)} ${Array.isArray(v) ? v.join(', ') : String(v)}`);
    }
  });
}
