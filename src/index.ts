/**
 * kimi-linear: the library entry. Devices and tensors, the kernels (each with its plain-TS reference
 * running on the cpu backend), checkpoint I/O and the model pieces. The data pipeline is a separate
 * entry (`kimi-linear/data`) because it loads DuckDB.
 */
export { type AcquireOptions, type DawnToggle, NoAdapterError } from './gpu/acquire.js';
export { GpuContext, type GpuFeatures } from './gpu/context.js';
export { GpuOutOfMemoryError, KernelError } from './gpu/kernelError.js';
export { Params } from './gpu/params.js';
export { type BackendChoice, openDevice, type OpenOptions } from './runtime/backend.js';
export { CpuDevice, cpu } from './tensor/cpuDevice.js';
export { type DType, bf16ArrayToF32, f32ArrayToBf16 } from './tensor/dtype.js';
export { keep, scope, scopeAsync } from './tensor/scope.js';
export { type Shape, ShapeError } from './tensor/shape.js';
export { type Device, Tensor } from './tensor/tensor.js';
export { Rng } from './util/random.js';

export * from './kernels/index.js';
export { attention, type AttentionOptions } from './kernels/attention/index.js';
export * as kda from './kernels/kda/index.js';
export { cacheWrite, mlaDecode, type MlaDecodeOptions } from './kernels/mla/index.js';
export { experts, type ExpertWeights, type RouterConfig, route } from './kernels/moe/index.js';
export { randomUniform } from './kernels/random/index.js';

export * from './io/safetensors/index.js';
export {
  applyChatTemplate,
  type ChatMessage,
  loadTokenizer,
  renderChatTemplate,
  type Tokenizer,
  trainBpe,
} from './io/tokenizer/index.js';
export * from './model/config.js';
export { countParameters, cacheSizes, expectedTensors, inspectConfig } from './model/inspect.js';
export { HybridCache, type HybridCacheSpec } from './model/hybridCache.js';
export { PagePool, OutOfPagesError } from './model/pagePool.js';
export { Sampler, type SamplingOptions } from './generate/sampler.js';
export { generate, generateBatch, type GenerateOptions, type SequenceEvent } from './generate/generate.js';
export { BatchSession, type BatchSessionOptions } from './model/batchSession.js';
export { Session, type SessionOptions } from './model/session.js';
export { rope, ropeBackward } from './kernels/rope/index.js';
