/** l2norm shares the row-normalisation kernel with rmsnorm (sum instead of mean, no weight). */
import { NORM_WG, type NormVariant, normKey, normWgsl } from '../rmsnorm/rmsnorm.wgsl.js';

export const L2NORM_WG = NORM_WG;
const variant: NormVariant = { kind: 'l2' };
export const l2normKey = normKey(variant);

export function l2normWgsl(): string {
  return normWgsl(variant);
}
