/**
 * The browser-safe part of safetensors I/O: parsing, validation, decoding, encoding, lazy files over any
 * ByteSource and checkpoints over any CheckpointStore. Nothing here touches node:* modules.
 */
export * from './checkpoint.js';
export * from './decode.js';
export * from './dtypes.js';
export * from './encode.js';
export * from './errors.js';
export * from './file.js';
export * from './header.js';
export * from './source.js';
