import { setFlagsFromString } from 'node:v8';

// V8 12.4 (Node 22) and older abort the process ("unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when TurboFan has inlined a JS->Wasm call
// whose signature uses externref, as every cedar-wasm export does, and the caller is
// deoptimized while the Wasm call runs: its deoptimizer cannot rebuild a reference return
// value. Not inlining those calls avoids it at no measurable cost. Evaluated before the
// engine loads (cedar.ts imports this first), so nothing has been optimized yet.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');
