/**
 * Reverse-mode autograd as a tape, the way the model is trained.
 *
 * Design: the model is written once, against the differentiable wrappers in ops.ts, which have the
 * kernels' signatures. A wrapper always runs the kernel; only while a tape is active (`withTape`) does it
 * also append a node: the ids of its input and output tensors, the tensors its backward needs (saved as
 * kept aliases, so the model's `scope()` cannot free them), and a backward closure. Without a tape the
 * wrappers cost one `activeTape()` check, so inference runs the same code at the same speed.
 *
 * Tensors are identified by `Tensor.id`: parameters are the same Tensor objects on every call, so a
 * weight used twice (or a residual stream read by two branches) receives the sum of its gradients
 * (`accumulate`). Views (reshape, narrow, expand, ...) are nodes like any other; their backward maps the
 * gradient back onto the viewed tensor's shape.
 *
 * `backward(root, seed)` walks the nodes in reverse. A node runs only when one of its outputs received a
 * gradient; afterwards its outputs' gradients and its saved tensors are disposed, so memory falls as the
 * walk proceeds. What remains are the gradients of leaves (tensors no node produced: the parameters and
 * the inputs), returned by id; the caller owns them. Every closure runs inside `scope()`, so its
 * temporaries are freed at once.
 *
 * `checkpoint(inputs, fn)` is activation checkpointing: fn runs without recording and only its inputs are
 * saved; in backward fn is run again on a fresh tape and differentiated there, and its leaf gradients
 * (the inputs and every parameter fn read) flow into this tape.
 */
import { add } from '../kernels/elementwise/index.js';
import { keep, scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/** Gradients of a node's inputs (undefined where an input gets none, e.g. integer ids) from its outputs'. */
export type BackwardFn = (gradOutputs: readonly (Tensor | undefined)[], tape: Tape) => readonly (Tensor | undefined)[];

interface TapeNode {
  name: string;
  inputs: number[];
  outputs: number[];
  backward: BackwardFn;
  saved: Tensor[];
}

let active: Tape | undefined;

/** The tape recording now, if any. Wrappers record only when this is defined. */
export function activeTape(): Tape | undefined {
  return active;
}

/** Run fn with `tape` recording (undefined: nothing records, e.g. stats computed beside a training forward). */
export function withTape<R>(tape: Tape | undefined, fn: () => R): R {
  const prev = active;
  active = tape;
  try {
    return fn();
  } finally {
    active = prev;
  }
}

export function noGrad<R>(fn: () => R): R {
  return withTape(undefined, fn);
}

export interface TapeOptions {
  /**
   * The leaves gradients are wanted for (the parameters). When given, recording an op whose float
   * input is neither one of them nor made by a recorded op throws: such a tensor was made by a plain
   * kernel call or view on the differentiable path, and its gradient would silently be lost.
   */
  leaves?: Iterable<Tensor | number>;
}

export class Tape {
  private nodes: TapeNode[] = [];
  private grads = new Map<number, Tensor>();
  private produced = new Set<number>();
  private done = false;
  private readonly leaves?: Set<number>;

  constructor(opts: TapeOptions = {}) {
    if (opts.leaves) this.leaves = new Set([...opts.leaves].map((t) => (typeof t === 'number' ? t : t.id)));
  }

  get size(): number {
    return this.nodes.length;
  }

  /** A kept alias of t that lives until the node that saved it has run backward (or the tape is disposed). */
  save(t: Tensor): Tensor {
    return keep(t.alias());
  }

  /**
   * Append a node. `saved` are tensors from `save()` that the closure uses; the tape disposes them.
   * Outputs must be tensors made by this call (fresh ids), never one of the inputs.
   */
  record(name: string, inputs: readonly Tensor[], outputs: readonly Tensor[], backward: BackwardFn, saved: Tensor[]) {
    if (this.done) throw new Error(`autograd: '${name}' recorded on a tape that has already run backward`);
    const ins = inputs.map((t) => t.id);
    if (this.leaves) {
      for (const t of inputs) {
        if (t.dtype !== 'i32' && !this.produced.has(t.id) && !this.leaves.has(t.id)) {
          throw new Error(
            `autograd: an input ${t} of '${name}' was not made by a differentiable op (use the wrappers in autograd/ops.ts for every op and view on the training path)`,
          );
        }
      }
    }
    for (const o of outputs) {
      if (ins.includes(o.id)) throw new Error(`autograd: '${name}' returned one of its inputs as an output`);
      this.produced.add(o.id);
    }
    this.nodes.push({ name, inputs: ins, outputs: outputs.map((t) => t.id), backward, saved });
  }

  /** Add g to the gradient held for tensor id (the tape takes ownership of g). */
  accumulate(id: number, g: Tensor): void {
    const prev = this.grads.get(id);
    if (!prev) {
      this.grads.set(id, keep(g));
      return;
    }
    const sum = keep(add(prev, g));
    prev.dispose();
    g.dispose();
    this.grads.set(id, sum);
  }

  /**
   * Remove and return the gradient pending for tensor id, if any (the caller owns it). A backward that can
   * add it inside its own kernel (linear's dX through the matmul epilogue) takes it and returns the sum,
   * which then lands in the empty slot: the same value as `accumulate`, without its elementwise pass.
   */
  takeGrad(id: number): Tensor | undefined {
    const g = this.grads.get(id);
    this.grads.delete(id);
    return g;
  }

  /**
   * Back-propagate `seed` (d loss / d root, root's shape) through every recorded node. Returns the
   * gradients of leaves by tensor id; the caller owns (disposes) them.
   */
  backward(root: Tensor, seed: Tensor): Map<number, Tensor> {
    if (this.done) throw new Error('autograd: backward() was already run on this tape');
    if (seed.numel !== root.numel)
      throw new Error(`autograd: seed ${seed} does not match the root ${root} it differentiates`);
    this.done = true;
    this.accumulate(root.id, seed.alias());
    for (let n = this.nodes.length - 1; n >= 0; n--) {
      const node = this.nodes[n];
      const gOut = node.outputs.map((id) => this.grads.get(id));
      if (gOut.some((g) => g !== undefined)) {
        const gIn = scope(() => node.backward(gOut, this));
        if (gIn.length !== node.inputs.length)
          throw new Error(
            `autograd: backward of '${node.name}' gave ${gIn.length} gradients for ${node.inputs.length} inputs`,
          );
        const seen = new Set<Tensor>(gOut.filter((g) => g !== undefined));
        gIn.forEach((g, i) => {
          if (!g) return;
          // A closure may pass a gradient straight through (or return one tensor twice): the tape owns
          // each accumulated gradient, so give it its own handle.
          this.accumulate(node.inputs[i], seen.has(g) ? g.alias() : g);
          seen.add(g);
        });
      }
      for (const id of node.outputs) {
        this.grads.get(id)?.dispose();
        this.grads.delete(id);
      }
      for (const t of node.saved) t.dispose();
      node.saved = [];
    }
    this.nodes = [];
    const leaves = new Map<number, Tensor>();
    for (const [id, g] of this.grads) {
      if (this.produced.has(id)) g.dispose();
      else leaves.set(id, g);
    }
    this.grads.clear();
    return leaves;
  }

  /** Free everything held (saved tensors, pending gradients) without running backward. */
  dispose(): void {
    for (const node of this.nodes) for (const t of node.saved) t.dispose();
    this.nodes = [];
    for (const g of this.grads.values()) g.dispose();
    this.grads.clear();
    this.done = true;
  }

  /**
   * Activation checkpointing of fn(...inputs): nothing inside is recorded now; backward runs fn again
   * on a fresh tape. fn must be deterministic in its inputs (the MoE routing recomputes to the same
   * experts because the inputs are bit-identical) and must read parameters only by closure.
   */
  checkpoint(name: string, inputs: readonly Tensor[], fn: (...xs: Tensor[]) => Tensor): Tensor {
    const out = withTape(undefined, () => fn(...inputs));
    const saved = inputs.map((t) => this.save(t));
    this.record(
      name,
      inputs,
      [out],
      ([g], outer) => {
        const inner = new Tape(outer.leaves ? { leaves: [...saved, ...outer.leaves] } : {});
        const again = withTape(inner, () => fn(...saved));
        const leaves = inner.backward(again, g!);
        const gIn = saved.map((s) => {
          const gi = leaves.get(s.id);
          leaves.delete(s.id);
          return gi;
        });
        // Every other leaf of the recomputation is a tensor fn read by closure: a parameter.
        for (const [id, gl] of leaves) outer.accumulate(id, gl);
        return gIn;
      },
      saved,
    );
    return out;
  }
}
