/**
 * The gradient function the trainer calls: modelGradients (src/model/gradients.ts) by default; tests
 * may pass another with the same contract (loss f32 [1], grads with the weights' structure, stats).
 */
import { type GradientResult, modelGradients } from '../model/gradients.js';
import type { KimiLinearModel } from '../model/forward.js';
import type { Tensor } from '../tensor/tensor.js';

export type { GradientResult };
export type GradientFn = (model: KimiLinearModel, ids: Tensor, opts?: { checkpointing?: boolean }) => GradientResult;

export const defaultGradientFn: GradientFn = modelGradients;
