// mlalazy3's device sitting: the rows of bench mla's JSON that answer issue #4, one line each (copied into
// .device-mlalazy3/ and run there: node sum.mjs $OUT/x.json).
import { readFileSync } from 'node:fs';

const d = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const j = (x) => JSON.stringify(x);
for (const p of d.alignProbe ?? []) console.log('probe', j(p));
for (const c of d.checks ?? [])
  console.log('check', c.context, j(c.int8Sgm ?? {}), c.vsInt8Reference?.relToMax ?? c.error,
    c.lazyDiag ? j({ h0: c.lazyDiag.heads0to15, h1: c.lazyDiag.heads16to31, k: c.lazyDiag.k }) : '');
for (const c of d.lazyVsDefault ?? []) console.log('vsDefault', c.context, j(c.int8Sgm), c.relToMax ?? c.error, c.finite);
for (const r of d.decode ?? []) console.log('decode', r.context, r.ms, j(r.kernelsMs ?? r.error ?? {}));
for (const s of d.sweep ?? []) console.log('sweep', s.context, j(s.int8Sgm ?? {}), s.ms ?? s.error);
// `gate`: exit 0 only if the lazy form (padded, the first {lazy: true} check) is within 1e-2 of the int8 reference.
if (process.argv[3] === 'gate') {
  const c = (d.checks ?? []).find((x) => j(x.int8Sgm) === '{"lazy":true}');
  process.exit(c && c.vsInt8Reference?.relToMax < 1e-2 ? 0 : 1);
}
