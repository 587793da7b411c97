/**
 * Imported first (before anything that opens the GPU) by the test files that need lavapipe's default 8-lane
 * subgroups: the MLA decode kernels (tiled, int8) need subgroups of 8, 16 or 32 lanes, and a model's decode
 * takes the tiled kernel only where they exist. scripts/test.sh runs the suite with LP_NATIVE_VECTOR_WIDTH=128
 * (4 lanes, kernels compile ~1.7x faster); Mesa reads the variable when the process creates its device, and
 * each test file runs in its own process (vitest's forks pool), so dropping it here restores the default for
 * this file only. Its kernels go to their own shader cache (llvmpipe keys the cache by the vector width).
 */
delete process.env.LP_NATIVE_VECTOR_WIDTH;
