/** Reference for `contiguous`: read a strided view element by element into a fresh dense array. */
export { gatherStrided as contiguousReference } from '../../tensor/strided.js';
