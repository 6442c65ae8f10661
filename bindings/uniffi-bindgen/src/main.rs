//! `uniffi-bindgen`: generates the foreign-language bindings of
//! `sealpost-ffi` from the built library (library mode), for example
//! `uniffi-bindgen generate --library libsealpost_ffi.so --language kotlin --out-dir out`.
//! Pinned to the same uniffi version as the library, which library mode requires.

fn main() {
    uniffi::uniffi_bindgen_main();
}
