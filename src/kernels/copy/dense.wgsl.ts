/**
 * Dense copy at full bandwidth: 16-byte words, a grid-stride loop so a fixed number of workgroups
 * (a few per SM) streams any size. The bandwidth benchmark uses it; it is also the fastest way to
 * duplicate a dense tensor.
 */
export const DENSE_COPY_WG = 256;

export function denseCopyWgsl(): string {
  return /* wgsl */ `
struct Params { words: u32, tail: u32, stride: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(${DENSE_COPY_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  for (var i = gid.x; i < p.words; i += p.stride) {
    dst[i] = src[i];
  }
}`;
}
