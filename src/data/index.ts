/** The data pipeline's library surface (see docs/DATA.md). */
export { type BuildOptions, buildDataset, type Manifest, readManifest } from './build.js';
export { type CleanConfig, cleanDocument, DEFAULT_CLEAN, DEFAULT_QUALITY } from './clean.js';
export { DEFAULT_DEDUP, type DedupConfig, Deduper } from './dedup.js';
export { type Batch, DataLoader, type LoaderOptions, type LoaderState } from './loader.js';
export { listInputs, readFile } from './read.js';
export { loadRecipe, parseRecipe, type Recipe } from './recipe.js';
export { Report } from './report.js';
export { cleanStage, dedupStage, statsStage } from './stages.js';
export { type TraceOptions, type TraceSegment, trace } from './trace.js';
