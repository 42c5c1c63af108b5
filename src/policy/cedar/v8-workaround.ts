import { setFlagsFromString } from 'node:v8';

/**
 * Node 20's V8 (11.3) can abort the whole process ("Fatal error ... unreachable code" in the deoptimizer) when
 * optimized JavaScript that inlined a call into Cedar's WebAssembly is deoptimized while that call runs: seen
 * in up to half of the benchmark processes (docs/performance.md, "A V8 abort in Node 20"). Turning the
 * inlining off costs nothing measurable. Imported for its effect before `@cedar-policy/cedar-wasm` by every
 * module that loads it, so the flag is set before any of that code can be optimized.
 */
setFlagsFromString('--no-turbo-inline-js-wasm-calls');
