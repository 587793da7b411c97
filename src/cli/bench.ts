/**
 * `kimi-linear bench <what>`: benchmarks as commands (as llama-bench), each printing a table or, with
 * --json, an object with the exact shapes, times and derived rates, so runs are comparable.
 * Each benchmark lives in src/bench/<what>.ts and registers its subcommand here.
 */
import type { Command } from 'commander';
import { registerChainBench } from '../bench/chain.js';
import { registerInt8Bench } from '../bench/int8.js';
import { registerKdaBench } from '../bench/kda.js';
import { registerDecodeBench } from '../bench/decode.js';
import { registerMatmulBench } from '../bench/matmul.js';
import { registerMlaBench } from '../bench/mla.js';
import { registerSgmBench } from '../bench/sgm.js';
import { registerTrainBench } from '../bench/train.js';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('GPU and pipeline benchmarks (tables, or --json)');
  registerMatmulBench(bench);
  registerDecodeBench(bench);
  registerKdaBench(bench);
  registerMlaBench(bench);
  registerTrainBench(bench);
  registerInt8Bench(bench);
  registerSgmBench(bench);
  registerChainBench(bench);
}
