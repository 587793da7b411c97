#!/usr/bin/env node
/**
 * The `kimi-linear` command. Each subcommand lives in its own file and registers itself here.
 * Errors thrown by a command are printed as one clear message (stack only with KIMI_DEBUG=1) with exit 1.
 */
import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerData } from './data.js';
import { registerForward } from './forward.js';
import { registerGenerate } from './generate.js';
import { registerInfo } from './info.js';
import { registerInspect } from './inspect.js';
import { registerTrain } from './train.js';

const program = new Command();
program
  .name('kimi-linear')
  .description('Kimi Linear (KDA + MLA hybrid) on WebGPU: inspect, run, benchmark, train and build data')
  .version('0.1.0')
  .showHelpAfterError();

registerInfo(program);
registerBench(program);
registerForward(program);
registerGenerate(program);
registerInspect(program);
registerData(program);
registerTrain(program);

program.parseAsync(process.argv).then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    const e = err as Error;
    process.stderr.write(`kimi-linear: ${e?.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e?.message ?? e}\n`);
    if (process.env.KIMI_DEBUG) process.stderr.write(`${e?.stack}\n`);
    process.exit(1);
  },
);
