// The entry point for Node: the WebAssembly module is compiled when this
// file is imported (Node allows synchronous compilation), so `init()` is
// only there for code shared with the browser.
import { readFileSync } from "node:fs";
import { initSync } from "./sealpost_wasm.js";

initSync({ module: readFileSync(new URL("./sealpost_wasm_bg.wasm", import.meta.url)) });

export * from "./sealpost_wasm.js";
export { SealpostError, RelayError } from "./errors.js";

/** Resolves at once: under Node the module is loaded on import. */
export function init(_wasm) {
  return Promise.resolve();
}
