/** Opening a checkpoint directory as a ready model: config, checked weights, device. */
import { openCheckpoint } from '../io/safetensors/index.js';
import type { Device } from '../tensor/tensor.js';
import { KimiLinearModel } from './forward.js';
import { loadKimiConfig } from './loadConfig.js';
import { type LoadWeightsOptions, loadModelWeights } from './weights.js';

export async function loadModel(dir: string, device: Device, opts: LoadWeightsOptions = {}): Promise<KimiLinearModel> {
  const cfg = await loadKimiConfig(`${dir}/config.json`);
  const ckpt = await openCheckpoint(dir);
  try {
    return new KimiLinearModel(cfg, await loadModelWeights(ckpt, cfg, device, opts));
  } finally {
    await ckpt.close();
  }
}
