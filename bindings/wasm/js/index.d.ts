// Types of the `sealpost` package (both entry points: browsers and
// bundlers get index.js, Node gets node.js; the API is the same).
export * from "./sealpost_wasm.js";
export { SealpostError, RelayError } from "./errors.js";
import type { InitInput } from "./sealpost_wasm.js";

/**
 * Loads the WebAssembly module; await it once before any other call.
 * `wasm` overrides where the module comes from: a URL, a `Response` (or a
 * promise of one, such as `fetch(url)`), the bytes, or a compiled
 * `WebAssembly.Module`; by default `sealpost_wasm_bg.wasm` next to the
 * package's JavaScript. Repeated calls share one load. Under Node the
 * module is already loaded on import and this resolves at once.
 */
export function init(wasm?: InitInput | Promise<InitInput>): Promise<void>;
