/**
 * Imported first (before anything that opens the GPU) by the test files that need lavapipe's default 8-lane
 * subgroups: the MLA decode kernels (tiled, int8) need subgroups of 8, 16 or 32 lanes. With 4, the int8 cache
 * is refused and a model's decode silently takes the split kernel instead of the tiled one. So the MLA kernel
 * tests and the files that decode the 48B structure (int8 cache, tiled kernel) import this; the other model
 * decode tests (batch, generate, model-decode, ...) run with 4 lanes on the split kernel.
 * scripts/test.sh runs the suite with LP_NATIVE_VECTOR_WIDTH=128 (4 lanes: kernels compile ~1.7x faster).
 * Mesa reads the variable when the process creates its device, and each test file runs in its own process
 * (vitest's forks pool), so dropping it here restores the default for this file only. Code compiled at the
 * default width is not what the narrow files compile, so these files share no shader cache entries with them.
 */
delete process.env.LP_NATIVE_VECTOR_WIDTH;
