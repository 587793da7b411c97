/**
 * A tensor-core kernel's WGSL with its subgroup-matrix types and builtins replaced by plain stand-ins of the
 * same shapes (a struct per matrix kind, a function per builtin and array; the template syntax), so a device without the feature (lavapipe, CI) compiles everything else in it: declarations, scoping,
 * types, barriers and their uniformity. What it cannot check is the builtins themselves: their forms are the
 * ones proved on the H200 (int8: src/kernels/int8; f16: scripts/probe-f16.mjs), and each kernel is checked
 * against its reference there. Integer (i8 / i32) and float (f16 / f32) matrices both: the stand-ins hold an
 * i32 or an f32, and a store converts to the element type of the array it writes (read from its declaration).
 */
export function sgmStubWgsl(code: string): string {
  let c = code
    .replace('enable chromium_experimental_subgroup_matrix;\n', '')
    .replace('diagnostic(off, chromium.subgroup_matrix_uniformity);\n', '');
  const float = /subgroup_matrix_(?:left|right|result)<f(?:16|32)/.test(code);
  const T = float ? 'f32' : 'i32';
  const kinds: Record<string, string> = { left: 'SmL', right: 'SmR', result: 'SmC' };
  c = c.replace(/subgroup_matrix_(left|right|result)<[^>]*>\(\)/g, (_, k: string) => `${kinds[k]}(0)`);
  // subgroupMatrixLoad<subgroup_matrix_KIND<..>, layout>(&arr, offset, stride) or <..>>(&arr, offset, bool, stride)
  c = c.replace(
    /subgroupMatrixLoad<subgroup_matrix_(left|right|result)<[^>]*>(?:, (?:row|col)_major)?>\(&(\w+), /g,
    (_, k: string, arr: string) => `smLoad${kinds[k]}_${arr}(`,
  );
  c = c.replace(/subgroupMatrixStore(?:<(?:row|col)_major>)?\(&(\w+), /g, (_, arr: string) => `smStore_${arr}(`);
  c = c
    .replace(/subgroupMatrixMultiplyAccumulate\(/g, 'smMA(')
    .replace(/subgroupMatrixMultiply<(?:i32|f32|f16)>\(/g, 'smM(')
    .replace(/subgroupMatrixScalarMultiply\(/g, 'smSM(');
  const fns: string[] = [
    `struct SmL { v: ${T} }`,
    `struct SmR { v: ${T} }`,
    `struct SmC { v: ${T} }`,
    'fn smMA(a: SmL, b: SmR, c: SmC) -> SmC { return SmC(a.v * b.v + c.v); }',
    'fn smM(a: SmL, b: SmR) -> SmC { return SmC(a.v * b.v); }',
  ];
  if (float) fns.push('fn smSM(a: SmC, s: f32) -> SmC { return SmC(a.v * s); }');
  /** The element type of an array as declared (`name: array<T, ...>` or `name: array<T>`). */
  const elem = (arr: string) => {
    const t = new RegExp(`\\b${arr}\\s*:\\s*array<\\s*(\\w+)`).exec(c)?.[1];
    return t && ['i32', 'u32', 'f32', 'f16'].includes(t) ? t : '';
  };
  const seen = new Set<string>();
  for (const m of c.matchAll(/smLoad(Sm[LRC])_(\w+)\(|smStore_(\w+)\(/g)) {
    if (seen.has(m[0])) continue;
    seen.add(m[0]);
    if (m[1])
      fns.push(`fn smLoad${m[1]}_${m[2]}(o: u32, s: u32) -> ${m[1]} { return ${m[1]}(${T}(${m[2]}[o]) + ${T}(s)); }`);
    else fns.push(`fn smStore_${m[3]}(o: u32, v: SmC, s: u32) { ${m[3]}[o + s] = ${elem(m[3])}(v.v); }`);
  }
  // Insert the stand-ins after the last module-scope declaration that precedes the first function (or entry point).
  const at = c.search(/\n(?:fn |@compute)/);
  return `${c.slice(0, at)}\n${fns.join('\n')}${c.slice(at)}`;
}
