/**
 * The absorbed MLA decode's tiled kernel against the reference (cases: mla-decode-cases.ts). The split kernel,
 * the reference and the plans: mla-decode-split.test.ts.
 */
// Before anything opens the GPU: the tiled kernel needs 8-lane subgroups (lanes-default.ts).
import './lanes-default.js';
import { describe } from 'vitest';
import { defineMlaDecodeCases, TILED_CASES } from './mla-decode-cases.js';

describe('absorbed MLA decode', () => {
  defineMlaDecodeCases(TILED_CASES);
});
