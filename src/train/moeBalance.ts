/**
 * Auxiliary-loss-free MoE balancing (DeepSeek-V3, Kimi): after each step every routed expert's
 * selection bias moves by a fixed amount u toward balance: bias_e += u * sign(mean_load - load_e).
 * Overloaded experts become less likely to be picked, idle ones more. The bias only affects selection,
 * never the mixing weights, and is not trained by gradient.
 */
export function balanceBias(bias: Float32Array, counts: readonly number[], u: number): void {
  if (counts.length !== bias.length)
    throw new Error(`moe balance: ${counts.length} expert counts for ${bias.length} experts`);
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  for (let e = 0; e < bias.length; e++) bias[e] += u * Math.sign(mean - counts[e]);
}

/** Load summary for the metrics: largest and smallest share of routed tokens, experts that got none. */
export function loadSummary(counts: readonly number[]): { max_share: number; min_share: number; idle: number } {
  const total = counts.reduce((a, b) => a + b, 0) || 1;
  return {
    max_share: Math.max(...counts) / total,
    min_share: Math.min(...counts) / total,
    idle: counts.filter((c) => c === 0).length,
  };
}
