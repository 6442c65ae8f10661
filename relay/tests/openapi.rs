//! docs/openapi.yaml is as strict as the relay: each pattern and bound it
//! states for an account id, a base64url field, a handle or a message id
//! accepts exactly what the relay's parsers accept, checked on generated
//! inputs around every edge (lengths, the unused bits of the last
//! base64url character, letter case, reserved names, id 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use regex::Regex;
use sealpost_client::{AckBody, ErrorCode, PullQuery, SessionCredentials, decode_account};
use sealpost_relay::fuzzing::normalize_handle;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn spec() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml");
    std::fs::read_to_string(path).unwrap()
}

/// The first `key: "..."` line after `anchor`, unescaped as YAML does.
fn value_after(spec: &str, anchor: &str, key: &str) -> String {
    let start = spec.find(anchor).unwrap_or_else(|| panic!("{anchor} not in openapi.yaml"));
    let line =
        spec[start..].lines().find_map(|l| l.trim().strip_prefix(key)).unwrap_or_else(|| panic!("{anchor}: no {key}"));
    let quoted = line.trim().strip_prefix('"').and_then(|l| l.strip_suffix('"')).unwrap_or(line.trim());
    quoted.replace("\\\\", "\\")
}

fn pattern_after(spec: &str, anchor: &str) -> Regex {
    Regex::new(&value_after(spec, anchor, "pattern:")).unwrap()
}

/// A small deterministic generator, so that a failure reproduces.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[usize::try_from(self.next() % from.len() as u64).unwrap()]
    }
}

/// Every string made from `encoded` by replacing its last character, and
/// by adding or removing one.
fn neighbours(encoded: &str) -> Vec<String> {
    let mut out = Vec::new();
    let stem = &encoded[..encoded.len().saturating_sub(1)];
    for c in ALPHABET {
        out.push(format!("{stem}{}", *c as char));
        out.push(format!("{encoded}{}", *c as char));
    }
    out.push(stem.to_owned());
    out.push(format!("{encoded}="));
    out
}

/// Checks that `pattern` accepts exactly the strings `decodes` accepts,
/// on encodings of `lengths` random bytes and their neighbours.
fn same_as_decoder(pattern: &Regex, lengths: &[usize], decodes: impl Fn(&str) -> bool, what: &str) {
    let mut g = Gen(0x5ea1_9057);
    let mut accepted = 0;
    for &n in lengths {
        for _ in 0..4 {
            let encoded = B64.encode(g.bytes(n));
            assert!(pattern.is_match(&encoded), "{what}: the pattern refuses a canonical encoding {encoded}");
            for s in neighbours(&encoded) {
                let by_code = decodes(&s);
                assert_eq!(
                    pattern.is_match(&s),
                    by_code,
                    "{what}: pattern and relay differ on {s:?} (relay accepts: {by_code})"
                );
                accepted += usize::from(by_code);
            }
        }
    }
    assert!(accepted > 0, "{what}: no neighbour was accepted, the check proved nothing");
}

#[test]
fn base64url_fields_are_canonical_in_the_spec_as_in_the_relay() {
    let spec = spec();
    let any = pattern_after(&spec, "    Base64Url:");
    let lengths: Vec<usize> = (0..70).collect();
    same_as_decoder(&any, &lengths, |s| B64.decode(s).is_ok(), "Base64Url");

    let account = pattern_after(&spec, "    AccountId:");
    same_as_decoder(&account, &[32], |s| decode_account("a", s).is_ok(), "AccountId");
    assert_eq!(value_after(&spec, "    AccountId:", "minLength:"), "43");
    assert_eq!(value_after(&spec, "    AccountId:", "maxLength:"), "43");

    let exactly = |n: usize| move |s: &str| B64.decode(s).is_ok_and(|b| b.len() == n);
    let prekey = pattern_after(&spec, "    UploadPrekeysRequest:");
    same_as_decoder(&prekey, &[100], exactly(100), "one-time prekey");
    let identity = pattern_after(&spec, "        identity:");
    same_as_decoder(&identity, &[128], exactly(128), "identity");
    let session_id = pattern_after(&spec, "          description: The session id");
    let session_header = |id: &str| format!("SealpostSession id={id},seq=1,mac={}", B64.encode([0u8; 32]));
    same_as_decoder(&session_id, &[16], |s| SessionCredentials::parse(&session_header(s)).is_ok(), "session id");
    let session_key = pattern_after(&spec, "          description: The session's HMAC-SHA-256 key");
    same_as_decoder(&session_key, &[32], exactly(32), "session key");
}

#[test]
fn the_handle_patterns_accept_exactly_what_the_relay_accepts() {
    let spec = spec();
    let handle = pattern_after(&spec, "    Handle:");
    let reserved = {
        let start = spec.find("    Handle:").unwrap();
        let line = spec[start..].lines().find(|l| l.trim().starts_with("not:")).unwrap();
        let quoted = &line[line.find('"').unwrap() + 1..line.rfind('"').unwrap()];
        Regex::new(&quoted.replace("\\\\", "\\")).unwrap()
    };
    let normalized = pattern_after(&spec, "    NormalizedHandle:");
    let (min, max): (usize, usize) = (
        value_after(&spec, "    Handle:", "minLength:").parse().unwrap(),
        value_after(&spec, "    Handle:", "maxLength:").parse().unwrap(),
    );
    let chars: Vec<char> = "abzAZ09_.-+ é/@".chars().collect();
    let mut g = Gen(0x04a4_d1e5);
    let mut candidates: Vec<String> =
        ["claim", "CLAIM", "Verify", "verify", "claims", "verifyx", "abc", "ab"].map(str::to_owned).to_vec();
    for n in 0..=40 {
        for _ in 0..40 {
            candidates.push((0..n).map(|_| *g.pick(&chars)).collect());
        }
        candidates.push(format!("+{}", "7".repeat(n)));
        candidates.push("a".repeat(n));
    }
    let mut accepted = 0;
    for c in &candidates {
        let by_spec = handle.is_match(c) && !reserved.is_match(c) && (min..=max).contains(&c.chars().count());
        let by_relay = normalize_handle(c);
        assert_eq!(by_spec, by_relay.is_ok(), "spec and relay differ on the handle {c:?}");
        if let Ok(n) = by_relay {
            accepted += 1;
            assert!(normalized.is_match(&n), "the normalized handle {n:?} does not match NormalizedHandle");
        }
    }
    assert!(accepted > 50 && accepted < candidates.len() / 2, "{accepted} of {}", candidates.len());
}

#[test]
fn message_id_bounds_are_the_relays() {
    let spec = spec();
    let min: i64 = value_after(&spec, "    MessageId:", "minimum:").parse().unwrap();
    let max: i64 = value_after(&spec, "    MessageId:", "maximum:").parse().unwrap();
    assert_eq!((min, max), (1, i64::MAX));
    let ack = |id: i64| AckBody::decode(format!(r#"{{"ids":[{id}]}}"#).as_bytes()).map(drop).map_err(|e| e.code);
    assert_eq!(ack(min), Ok(()));
    assert_eq!(ack(max), Ok(()));
    assert_eq!(ack(min - 1), Err(ErrorCode::BadIds));
    assert_eq!(
        AckBody::decode(format!(r#"{{"ids":[{}]}}"#, u64::MAX).as_bytes()).map(drop).map_err(|e| e.code),
        Err(ErrorCode::BadJson)
    );
    // `after` of a pull: a message id or 0.
    let after = value_after(&spec, "        - name: after", "schema:");
    assert!(after.contains("minimum: 0"), "{after}");
    assert_eq!(PullQuery::decode("after=0").map(|q| q.after), Ok(0));
    assert_eq!(PullQuery::decode(&format!("after={max}")).map(|q| q.after), Ok(max));
    assert_eq!(PullQuery::decode("after=-1").map_err(|e| e.code), Err(ErrorCode::BadQuery));
}
