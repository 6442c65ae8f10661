//! Conversions between JavaScript values and the core's types: times and
//! counts as numbers (checked, never truncated silently), 32-byte ids as
//! base64url strings (the relay's own spelling), records as plain objects.

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::SealpostError;

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
pub(crate) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A time argument: `now` (Unix seconds, a fraction is dropped) or, when
/// absent, the clock (`Date.now()`).
pub(crate) fn clock(now: Option<f64>) -> Result<u64, SealpostError> {
    let t = match now {
        Some(t) => t,
        None => js_sys::Date::now() / 1000.0,
    };
    non_negative_integer(t.floor()).ok_or(SealpostError::InvalidArgument("a time must be Unix seconds, at least 0"))
}

/// A non-negative integer that a JavaScript number holds exactly.
pub(crate) fn non_negative_integer(x: f64) -> Option<u64> {
    if (0.0..=MAX_SAFE_INTEGER).contains(&x) && x.fract() == 0.0 {
        // Exact: an integer below 2^53.
        #[allow(clippy::as_conversions, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = x as u64;
        Some(n)
    } else {
        None
    }
}

/// A signed integer that a JavaScript number holds exactly.
pub(crate) fn safe_i64(x: f64) -> Option<i64> {
    if x.is_finite() && x.abs() <= MAX_SAFE_INTEGER && x.fract() == 0.0 {
        #[allow(clippy::as_conversions, clippy::cast_possible_truncation)]
        let n = x as i64;
        Some(n)
    } else {
        None
    }
}

/// A u64 as a number (exact below 2^53; counts and seconds stay far below).
pub(crate) fn u64_to_f64(x: u64) -> f64 {
    #[allow(clippy::as_conversions, clippy::cast_precision_loss)]
    let f = x as f64;
    f
}

/// An i64 as a number, `None` unless it is exact.
pub(crate) fn i64_to_f64(x: i64) -> Option<f64> {
    #[allow(clippy::as_conversions, clippy::cast_precision_loss)]
    let f = x as f64;
    (f.abs() <= MAX_SAFE_INTEGER).then_some(f)
}

/// A 32-byte id (account, session) from its base64url string.
pub(crate) fn id32(s: &str) -> Option<[u8; 32]> {
    sealpost_client::decode_account("id", s).ok()
}

/// A 32-byte id as base64url without padding.
pub(crate) fn id_string(id: &[u8; 32]) -> String {
    sealpost_client::encode_account(id)
}

/// A plain object with these properties.
pub(crate) fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        // Defining a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// Bytes as a new `Uint8Array`.
pub(crate) fn bytes(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

/// An array of values.
pub(crate) fn array(items: impl IntoIterator<Item = JsValue>) -> Array {
    items.into_iter().collect()
}

/// A property of an object argument (`undefined` when absent or when the
/// value is no object).
pub(crate) fn field(o: &JsValue, name: &str) -> JsValue {
    if !o.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(o, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A `Uint8Array` argument (in an array or an object), copied out.
pub(crate) fn to_bytes(v: &JsValue, what: &'static str) -> Result<Vec<u8>, SealpostError> {
    v.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec).ok_or(SealpostError::InvalidArgument(what))
}

/// An array argument of `Uint8Array`s.
pub(crate) fn to_byte_arrays(v: &JsValue, what: &'static str) -> Result<Vec<Vec<u8>>, SealpostError> {
    if !Array::is_array(v) {
        return Err(SealpostError::InvalidArgument(what));
    }
    Array::from(v).iter().map(|item| to_bytes(&item, what)).collect()
}

/// An array argument of strings.
pub(crate) fn to_strings(v: &JsValue, what: &'static str) -> Result<Vec<String>, SealpostError> {
    if !Array::is_array(v) {
        return Err(SealpostError::InvalidArgument(what));
    }
    Array::from(v).iter().map(|item| item.as_string().ok_or(SealpostError::InvalidArgument(what))).collect()
}

/// An array argument of safe integers.
pub(crate) fn to_i64s(v: &JsValue, what: &'static str) -> Result<Vec<i64>, SealpostError> {
    if !Array::is_array(v) {
        return Err(SealpostError::InvalidArgument(what));
    }
    Array::from(v)
        .iter()
        .map(|item| item.as_f64().and_then(safe_i64).ok_or(SealpostError::InvalidArgument(what)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_only_when_exact() {
        assert_eq!(non_negative_integer(1_700_000_000.0), Some(1_700_000_000));
        assert_eq!(non_negative_integer(-1.0), None);
        assert_eq!(non_negative_integer(f64::NAN), None);
        assert_eq!(non_negative_integer(f64::INFINITY), None);
        assert_eq!(non_negative_integer(1.5), None);
        assert_eq!(non_negative_integer(MAX_SAFE_INTEGER + 1.0), None);
        assert_eq!(safe_i64(-5.0), Some(-5));
        assert_eq!(safe_i64(0.5), None);
        assert_eq!(i64_to_f64(i64::MAX), None);
        assert_eq!(i64_to_f64(41), Some(41.0));
    }

    #[test]
    fn ids_are_base64url_of_32_bytes() {
        let s = id_string(&[0xfb; 32]);
        assert_eq!(s.len(), 43);
        assert_eq!(id32(&s), Some([0xfb; 32]));
        assert_eq!(id32("short"), None);
        assert_eq!(id32(""), None);
    }
}
