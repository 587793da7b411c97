/** Safetensors I/O for Node: the browser-safe core plus file handles (node.ts) and atomic writes (writer.ts). */
export * from './core.js';
export * from './node.js';
export * from './writer.js';
