//! Session policies as plain objects, cipher suites as their wire ids.

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::error::SealpostError;
use crate::js::{self, field, object};

#[wasm_bindgen(typescript_custom_section)]
const POLICY_TS: &str = r#"
/** Length-hiding padding of plaintexts before sealing. */
export type Padding =
  /** Only the one-byte marker: lengths are visible. */
  | { kind: "none" }
  /** Padmé (the default): at most 12% overhead. */
  | { kind: "padme" }
  /** Round up to a multiple of `size` bytes (1 to 65535). */
  | { kind: "block"; size: number };

/**
 * What a party accepts and how its sessions behave. Start from
 * {@link defaultPolicy} and change fields; a field left out takes the
 * core's default.
 */
export interface SessionPolicy {
  /** Allowed suites, most preferred first. */
  suites: Suite[];
  /** The lowest protocol version accepted (2: hybrid post-quantum only). */
  minVersion: number;
  /** A new ratchet key after this many messages in one chain. */
  maxMessagesPerChain: number;
  /** A new ratchet key after this many seconds. */
  rotateAfter: number;
  /** An idle session refuses to encrypt after this many seconds. */
  expireAfter: number;
  /** How many message keys may be skipped within one chain. */
  maxSkipPerChain: number;
  /** How many skipped message keys are kept in total. */
  maxSkippedTotal: number;
  /** Padding of plaintexts before sealing. */
  padding: Padding;
}
"#;

/// A cipher suite; the value is its one-byte id on the wire.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// AES-256-GCM (id 1).
    Aes256Gcm = 1,
    /// ChaCha20-Poly1305 (id 2).
    ChaCha20Poly1305 = 2,
    /// XChaCha20-Poly1305 (id 3).
    XChaCha20Poly1305 = 3,
    /// AES-256-CBC with HMAC-SHA-256 (id 4), off by default.
    Aes256CbcHmacSha256 = 4,
    /// Twofish-256-CBC with HMAC-SHA-256 (id 5), off by default.
    Twofish256CbcHmacSha256 = 5,
}

/// The core's default policy (the suite order depends on the platform).
#[wasm_bindgen(js_name = defaultPolicy, unchecked_return_type = "SessionPolicy")]
pub fn default_policy() -> JsValue {
    to_js(&sealpost::SessionPolicy::default())
}

fn u32_field(v: &JsValue, what: &'static str) -> Result<Option<u32>, SealpostError> {
    if v.is_undefined() {
        return Ok(None);
    }
    v.as_f64()
        .and_then(js::non_negative_integer)
        .and_then(|x| u32::try_from(x).ok())
        .map(Some)
        .ok_or(SealpostError::InvalidArgument(what))
}

fn u64_field(v: &JsValue, what: &'static str) -> Result<Option<u64>, SealpostError> {
    if v.is_undefined() {
        return Ok(None);
    }
    v.as_f64().and_then(js::non_negative_integer).map(Some).ok_or(SealpostError::InvalidArgument(what))
}

/// A policy object from JavaScript; `undefined` or `null` is the default,
/// a field left out takes the default.
pub(crate) fn from_js(p: &JsValue) -> Result<sealpost::SessionPolicy, SealpostError> {
    let mut policy = sealpost::SessionPolicy::default();
    if p.is_undefined() || p.is_null() {
        return Ok(policy);
    }
    if !p.is_object() {
        return Err(SealpostError::InvalidArgument("a policy must be an object"));
    }
    let suites = field(p, "suites");
    if !suites.is_undefined() {
        const WHAT: &str = "policy.suites must be an array of Suite values";
        if !Array::is_array(&suites) {
            return Err(SealpostError::InvalidArgument(WHAT));
        }
        policy.suites = Array::from(&suites)
            .iter()
            .map(|s| {
                let id = s.as_f64().and_then(js::non_negative_integer).and_then(|x| u8::try_from(x).ok());
                id.ok_or(SealpostError::InvalidArgument(WHAT)).and_then(|id| Ok(sealpost::Suite::from_id(id)?))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(v) = u32_field(&field(p, "minVersion"), "policy.minVersion must be 0 to 255")? {
        policy.min_version =
            u8::try_from(v).map_err(|_| SealpostError::InvalidArgument("policy.minVersion must be 0 to 255"))?;
    }
    const COUNT: &str = "policy counts must be integers from 0 to 2^32 - 1";
    const SECONDS: &str = "policy durations must be whole seconds, at least 0";
    if let Some(v) = u32_field(&field(p, "maxMessagesPerChain"), COUNT)? {
        policy.max_messages_per_chain = v;
    }
    if let Some(v) = u64_field(&field(p, "rotateAfter"), SECONDS)? {
        policy.rotate_after = v;
    }
    if let Some(v) = u64_field(&field(p, "expireAfter"), SECONDS)? {
        policy.expire_after = v;
    }
    if let Some(v) = u32_field(&field(p, "maxSkipPerChain"), COUNT)? {
        policy.max_skip_per_chain = v;
    }
    if let Some(v) = u32_field(&field(p, "maxSkippedTotal"), COUNT)? {
        policy.max_skipped_total = v;
    }
    let padding = field(p, "padding");
    if !padding.is_undefined() {
        const WHAT: &str = "policy.padding must be {kind: \"none\" | \"padme\"} or {kind: \"block\", size}";
        policy.padding = match field(&padding, "kind").as_string().as_deref() {
            Some("none") => sealpost::Padding::None,
            Some("padme") => sealpost::Padding::Padme,
            Some("block") => {
                let size = u32_field(&field(&padding, "size"), WHAT)?.ok_or(SealpostError::InvalidArgument(WHAT))?;
                sealpost::Padding::Block(u16::try_from(size).map_err(|_| SealpostError::InvalidArgument(WHAT))?)
            }
            _ => return Err(SealpostError::InvalidArgument(WHAT)),
        };
    }
    Ok(policy)
}

/// A policy as a plain object.
pub(crate) fn to_js(p: &sealpost::SessionPolicy) -> JsValue {
    let suites = js::array(p.suites.iter().map(|s| JsValue::from(s.id())));
    let padding = match p.padding {
        sealpost::Padding::None => object(&[("kind", "none".into())]),
        sealpost::Padding::Padme => object(&[("kind", "padme".into())]),
        sealpost::Padding::Block(size) => object(&[("kind", "block".into()), ("size", size.into())]),
    };
    object(&[
        ("suites", suites.into()),
        ("minVersion", p.min_version.into()),
        ("maxMessagesPerChain", p.max_messages_per_chain.into()),
        ("rotateAfter", js::u64_to_f64(p.rotate_after).into()),
        ("expireAfter", js::u64_to_f64(p.expire_after).into()),
        ("maxSkipPerChain", p.max_skip_per_chain.into()),
        ("maxSkippedTotal", p.max_skipped_total.into()),
        ("padding", padding),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_values_are_the_wire_ids() {
        for (ours, core) in [
            (Suite::Aes256Gcm, sealpost::Suite::Aes256Gcm),
            (Suite::ChaCha20Poly1305, sealpost::Suite::ChaCha20Poly1305),
            (Suite::XChaCha20Poly1305, sealpost::Suite::XChaCha20Poly1305),
            (Suite::Aes256CbcHmacSha256, sealpost::Suite::Aes256CbcHmacSha256),
            (Suite::Twofish256CbcHmacSha256, sealpost::Suite::Twofish256CbcHmacSha256),
        ] {
            #[allow(clippy::as_conversions)]
            let id = ours as u8;
            assert_eq!(id, core.id());
        }
    }
}
