// The entry point for browsers and bundlers. Call `await init()` once
// before anything else: it fetches and compiles the WebAssembly module
// (browsers refuse to compile large modules synchronously).
import initWasm from "./sealpost_wasm.js";

export * from "./sealpost_wasm.js";
export { SealpostError, RelayError } from "./errors.js";

let ready;

/**
 * Loads the WebAssembly module. `wasm` overrides where it comes from: a
 * URL (string or `URL`), a `Response` or its promise (`fetch(...)`), the
 * bytes, or a compiled `WebAssembly.Module`. Without it the module is
 * fetched from `sealpost_wasm_bg.wasm` next to this file. Calling it again
 * returns the same promise; after a failure it tries again.
 */
export function init(wasm) {
  if (!ready) {
    const input = wasm === undefined ? undefined : { module_or_path: wasm };
    ready = initWasm(input).then(
      () => undefined,
      (e) => {
        ready = undefined;
        throw e;
      },
    );
  }
  return ready;
}
