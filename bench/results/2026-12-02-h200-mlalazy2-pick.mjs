// mlalazy2's device sitting: summarises bench mla's sgm-lazy-check rows (chk.json) and prints, on its last line, the
// --int8-sgm flags of the first real-kernel variant (not a lazyEvery/lazyMultiply diagnostic) within 1e-2 of the int8
// reference, or 'none'. Usage: node pick.mjs $OUT/chk.json
import { readFileSync } from 'node:fs';

const d = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let pick = 'none';
for (const c of d.checks ?? []) {
  const v = c.int8Sgm ?? {};
  const rel = c.vsInt8Reference?.relToMax;
  console.log(JSON.stringify({ int8Sgm: v, rel, error: c.error, diag: c.lazyDiag }));
  const flags = Object.keys(v).filter((k) => v[k] === true);
  if (pick === 'none' && v.lazy && !v.lazyEvery && rel !== undefined && rel < 1e-2) pick = flags.join(',');
}
for (const s of d.sweep ?? []) if (s.int8Sgm?.lazy) console.log('4K', JSON.stringify(s.int8Sgm), s.ms, s.error ?? '');
console.log(pick);
