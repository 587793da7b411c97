/**
 * Safetensors I/O. Browser-safe parts: errors, dtypes, header, decode, encode, source, file, checkpoint.
 * Node-only parts (file handles, atomic writes): node.ts and writer.ts.
 */
export * from './checkpoint.js';
export * from './decode.js';
export * from './dtypes.js';
export * from './encode.js';
export * from './errors.js';
export * from './file.js';
export * from './header.js';
export * from './node.js';
export * from './source.js';
export * from './writer.js';
