//! The JSON of the relay's API: a strict reader and a compact writer for
//! the few shapes its bodies have (objects of strings, integers, arrays of
//! those and nested objects).
//!
//! Written here rather than taken from serde_json because every binding
//! carries this crate, and in the browser's WebAssembly module serde and
//! serde_json were about 60 KiB of code (docs/PERFORMANCE.md) for a
//! vocabulary of a dozen objects. The reader accepts exactly RFC 8259
//! JSON (UTF-8, no trailing data, escapes checked, lone surrogates
//! refused), refuses duplicate keys, nests at most [`MAX_DEPTH`] deep,
//! holds at most [`MAX_VALUES`] values and never panics; numbers are only
//! ever read as integers. The writer writes what serde_json would: no
//! whitespace, fields in the order given.

/// How deep arrays and objects may nest (the API needs three levels).
pub(crate) const MAX_DEPTH: usize = 16;

/// How many values one document may hold (a pull reply of 1000 messages
/// holds about 5000). Every value is kept until the fields are taken, so
/// this bounds the memory a hostile body can make the reader use (about
/// 32 bytes per value, plus its strings' bytes, which the body's size
/// bounds), whatever the body limit.
pub(crate) const MAX_VALUES: usize = 65_536;

/// Why a body is not what was expected, in words for an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError(pub(crate) String);

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: &str) -> Result<T, JsonError> {
    Err(JsonError(message.into()))
}

/// A parsed JSON value. Numbers keep only what the API can use: an
/// integer's sign and magnitude, or that it was some other number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer, as its sign (true if negative) and magnitude.
    Int(bool, u64),
    /// A number with a fraction or an exponent, or beyond 64 bits.
    OtherNumber,
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, its members in order.
    Object(Object),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(..) | Value::OtherNumber => "a number",
            Value::Str(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

/// A JSON object whose fields are taken out one by one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Object {
    members: Vec<(String, Value)>,
}

impl Object {
    /// Parses `bytes` as one JSON object (and nothing after it).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, JsonError> {
        let mut p = Parser { bytes, at: 0, values: 0 };
        let value = p.value(0)?;
        p.skip_whitespace();
        if p.at != bytes.len() {
            return err("trailing characters after the JSON value");
        }
        match value {
            Value::Object(o) => Ok(o),
            other => Err(JsonError(format!("expected an object, found {}", other.kind()))),
        }
    }

    fn take(&mut self, key: &str) -> Result<Value, JsonError> {
        match self.members.iter().position(|(k, _)| k == key) {
            Some(i) => Ok(self.members.swap_remove(i).1),
            None => Err(JsonError(format!("missing field `{key}`"))),
        }
    }

    fn mismatch<T>(key: &str, expected: &str, found: &Value) -> Result<T, JsonError> {
        Err(JsonError(format!("`{key}` must be {expected}, found {}", found.kind())))
    }

    /// Takes the string field `key`.
    pub(crate) fn string(&mut self, key: &str) -> Result<String, JsonError> {
        match self.take(key)? {
            Value::Str(s) => Ok(s),
            other => Self::mismatch(key, "a string", &other),
        }
    }

    /// Takes the field `key`, a non-negative integer of at most 64 bits.
    pub(crate) fn u64(&mut self, key: &str) -> Result<u64, JsonError> {
        match self.take(key)? {
            Value::Int(false, n) => Ok(n),
            other => Self::mismatch(key, "an unsigned 64-bit integer", &other),
        }
    }

    /// Takes the field `key`, a signed 64-bit integer.
    pub(crate) fn i64(&mut self, key: &str) -> Result<i64, JsonError> {
        let value = self.take(key)?;
        as_i64(&value).map_or_else(|| Self::mismatch(key, "a signed 64-bit integer", &value), Ok)
    }

    /// Takes the field `key`, an array whose every item `pick` accepts
    /// (it gives back an item it refuses, for the message).
    fn array<T>(
        &mut self,
        key: &str,
        expected: &str,
        pick: impl Fn(Value) -> Result<T, Value>,
    ) -> Result<Vec<T>, JsonError> {
        match self.take(key)? {
            Value::Array(items) => {
                items.into_iter().map(|v| pick(v).or_else(|other| Self::mismatch(key, expected, &other))).collect()
            }
            other => Self::mismatch(key, expected, &other),
        }
    }

    /// Takes the field `key`, an array of strings.
    pub(crate) fn strings(&mut self, key: &str) -> Result<Vec<String>, JsonError> {
        self.array(key, "an array of strings", |v| match v {
            Value::Str(s) => Ok(s),
            other => Err(other),
        })
    }

    /// Takes the field `key`, an array of signed 64-bit integers.
    pub(crate) fn i64s(&mut self, key: &str) -> Result<Vec<i64>, JsonError> {
        self.array(key, "an array of 64-bit integers", |v| as_i64(&v).ok_or(v))
    }

    /// Takes the field `key`, an object.
    pub(crate) fn object(&mut self, key: &str) -> Result<Object, JsonError> {
        match self.take(key)? {
            Value::Object(o) => Ok(o),
            other => Self::mismatch(key, "an object", &other),
        }
    }

    /// Takes the field `key`, an array of objects.
    pub(crate) fn objects(&mut self, key: &str) -> Result<Vec<Object>, JsonError> {
        self.array(key, "an array of objects", |v| match v {
            Value::Object(o) => Ok(o),
            other => Err(other),
        })
    }

    /// Succeeds if every field was taken: the strict bodies refuse
    /// fields they do not know.
    pub(crate) fn finish(self) -> Result<(), JsonError> {
        match self.members.first() {
            None => Ok(()),
            Some((k, _)) => Err(JsonError(format!("unknown field `{k}`"))),
        }
    }
}

/// Whether a body may hold fields its reader did not take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fields {
    /// Refused (requests, and the replies that are checked strictly).
    Strict,
    /// Ignored (replies: a newer relay may add some).
    Lenient,
}

/// Parses `bytes` as one object and hands it to `read`, which takes the
/// fields it needs; with [`Fields::Strict`], a field left over is refused.
/// The one way the API's bodies and the client's frames are read (push
/// frames from the relay parse with [`Object::parse`] themselves: their
/// message reader returns the client's own errors).
pub(crate) fn read_object<T>(
    bytes: &[u8],
    fields: Fields,
    read: impl FnOnce(&mut Object) -> Result<T, JsonError>,
) -> Result<T, JsonError> {
    let mut object = Object::parse(bytes)?;
    let value = read(&mut object)?;
    if fields == Fields::Strict {
        object.finish()?;
    }
    Ok(value)
}

fn as_i64(value: &Value) -> Option<i64> {
    match *value {
        Value::Int(false, n) => i64::try_from(n).ok(),
        Value::Int(true, n) => 0i64.checked_sub_unsigned(n),
        _ => None,
    }
}

/// Refuses an object with a key twice. The API's objects have a few keys,
/// checked pairwise; beyond 16 the keys are sorted instead, so that a
/// hostile body with a great many keys costs `n log n`, not `n²`.
fn unique(members: &[(String, Value)]) -> Result<(), JsonError> {
    let duplicate = if members.len() <= 16 {
        members.iter().enumerate().find_map(|(i, (k, _))| members.get(..i)?.iter().any(|(p, _)| p == k).then_some(k))
    } else {
        let mut keys: Vec<&String> = members.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        keys.windows(2).find_map(|w| match w {
            [a, b] if a == b => Some(*a),
            _ => None,
        })
    };
    match duplicate {
        Some(k) => Err(JsonError(format!("duplicate field `{k}`"))),
        None => Ok(()),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Values read so far (at most [`MAX_VALUES`]).
    values: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, JsonError> {
        let b = self.peek().map_or_else(|| err("unexpected end of the JSON text"), Ok)?;
        self.at = self.at.saturating_add(1);
        Ok(b)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at = self.at.saturating_add(1);
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        let end = self.at.saturating_add(word.len());
        if self.bytes.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(value)
        } else {
            err("invalid literal")
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.values = self.values.saturating_add(1);
        if self.values > MAX_VALUES {
            return err("too many values");
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth.saturating_add(1)).map(Value::Object),
            Some(b'[') => self.array(depth.saturating_add(1)).map(Value::Array),
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => err("expected a JSON value"),
            None => err("unexpected end of the JSON text"),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Vec<Value>, JsonError> {
        if depth > MAX_DEPTH {
            return err("nested too deeply");
        }
        self.at = self.at.saturating_add(1);
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at = self.at.saturating_add(1);
            return Ok(items);
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.next()? {
                b',' => {}
                b']' => return Ok(items),
                _ => return err("expected `,` or `]` in an array"),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Object, JsonError> {
        if depth > MAX_DEPTH {
            return err("nested too deeply");
        }
        self.at = self.at.saturating_add(1);
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at = self.at.saturating_add(1);
            return Ok(Object { members });
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return err("expected a string key in an object");
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.next()? != b':' {
                return err("expected `:` after an object key");
            }
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.next()? {
                b',' => {}
                b'}' => {
                    unique(&members)?;
                    return Ok(Object { members });
                }
                _ => return err("expected `,` or `}` in an object"),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at = self.at.saturating_add(1);
        }
        self.at.saturating_sub(start)
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at = self.at.saturating_add(1);
        }
        let start = self.at;
        let n = self.digits();
        let int = self.bytes.get(start..self.at).unwrap_or_default();
        if n == 0 || (n > 1 && int.first() == Some(&b'0')) {
            return err("invalid number");
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.at = self.at.saturating_add(1);
            if self.digits() == 0 {
                return err("invalid number");
            }
            integral = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at = self.at.saturating_add(1);
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at = self.at.saturating_add(1);
            }
            if self.digits() == 0 {
                return err("invalid number");
            }
            integral = false;
        }
        // `-0` is not an integer either: serde_json reads it as the float
        // -0.0, and every integer field of the API refused it.
        if !integral || (negative && int == b"0") {
            return Ok(Value::OtherNumber);
        }
        let magnitude = int.iter().try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')));
        Ok(magnitude.map_or(Value::OtherNumber, |m| Value::Int(negative, m)))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.next()? {
                b @ b'0'..=b'9' => b - b'0',
                b @ b'a'..=b'f' => b - b'a' + 10,
                b @ b'A'..=b'F' => b - b'A' + 10,
                _ => return err("invalid \\u escape"),
            };
            v = (v << 4) | u32::from(d);
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.at = self.at.saturating_add(1);
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy the run up to the next quote, backslash or control byte.
            let rest = self.bytes.get(self.at..).unwrap_or_default();
            let run = plain_run(rest);
            out.extend_from_slice(rest.get(..run).unwrap_or_default());
            self.at = self.at.saturating_add(run);
            match self.next()? {
                b'"' => break,
                b'\\' => {
                    let c = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return err("invalid escape in a string"),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => return err("control character in a string"),
            }
        }
        String::from_utf8(out).map_or_else(|_| err("a string is not UTF-8"), Ok)
    }

    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.next()? != b'\\' || self.next()? != b'u' {
                    return err("lone surrogate in a string");
                }
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return err("lone surrogate in a string");
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return err("lone surrogate in a string"),
            c => c,
        };
        char::from_u32(code).map_or_else(|| err("invalid \\u escape"), Ok)
    }
}

/// Whether a byte ends a string's plain run: a quote, a backslash or a
/// control character.
fn special(b: u8) -> bool {
    (b == b'"') | (b == b'\\') | (b < 0x20)
}

/// The length of the run of `bytes` before the first [`special`] byte. Long
/// runs (base64 envelopes) are checked 16 bytes at a time, branch-free
/// within each block, which the compiler turns into vector instructions.
fn plain_run(bytes: &[u8]) -> usize {
    let mut blocks = bytes.chunks_exact(16);
    let mut skipped = 0usize;
    for block in blocks.by_ref() {
        if block.iter().fold(false, |any, &b| any | special(b)) {
            break;
        }
        skipped = skipped.saturating_add(16);
    }
    let tail = bytes.get(skipped..).unwrap_or_default();
    skipped.saturating_add(tail.iter().position(|&b| special(b)).unwrap_or(tail.len()))
}

/// Writes one JSON object, field by field, compactly.
pub(crate) struct ObjectWriter {
    out: Vec<u8>,
}

impl ObjectWriter {
    /// An object to which fields are added in order.
    pub(crate) fn new() -> Self {
        Self::with_capacity(64)
    }

    /// The same with room for `n` bytes.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut out = Vec::with_capacity(n);
        out.push(b'{');
        Self { out }
    }

    /// Starts field `key` (ASCII letters, digits and `_`: no escaping).
    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// Adds a string field.
    pub(crate) fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        write_string(&mut self.out, value);
        self
    }

    /// Adds an unsigned integer field.
    pub(crate) fn u64(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        write_u64(&mut self.out, value);
        self
    }

    /// Adds an array of strings.
    pub(crate) fn strs<'s>(mut self, key: &str, values: impl IntoIterator<Item = &'s str>) -> Self {
        self.key(key);
        self.out.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_string(&mut self.out, v);
        }
        self.out.push(b']');
        self
    }

    /// Adds an array of signed integers.
    pub(crate) fn i64s(mut self, key: &str, values: &[i64]) -> Self {
        self.key(key);
        self.out.push(b'[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_i64(&mut self.out, *v);
        }
        self.out.push(b']');
        self
    }

    /// Adds an object field.
    pub(crate) fn object(mut self, key: &str, value: ObjectWriter) -> Self {
        self.key(key);
        self.out.extend_from_slice(&value.finish());
        self
    }

    /// The object's bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = s.as_bytes();
    loop {
        let run = plain_run(rest);
        out.extend_from_slice(rest.get(..run).unwrap_or_default());
        let Some(&b) = rest.get(run) else { break };
        rest = rest.get(run.saturating_add(1)..).unwrap_or_default();
        out.push(b'\\');
        match b {
            b'"' | b'\\' => out.push(b),
            0x08 => out.push(b'b'),
            0x0c => out.push(b'f'),
            b'\n' => out.push(b'n'),
            b'\r' => out.push(b'r'),
            b'\t' => out.push(b't'),
            _ => {
                out.extend_from_slice(b"u00");
                out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
            }
        }
    }
    out.push(b'"');
}

/// Appends `n` in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i = i.saturating_sub(1);
        if let Some(slot) = buf.get_mut(i) {
            // n % 10 < 10: the cast cannot truncate.
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or_default());
}

/// Appends `n` in decimal.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Object, JsonError> {
        Object::parse(text.as_bytes())
    }

    #[test]
    fn reads_the_shapes_the_api_uses() {
        let mut o = parse(
            " {\"s\":\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\", \"u\": 18446744073709551615,\n\
             \"i\":-9223372036854775808, \"l\":[\"x\",\"y\"], \"n\":[1,-2,0], \"o\":{\"k\":[{}]}} ",
        )
        .unwrap();
        assert_eq!(o.string("s").unwrap(), "a\"b\\c/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}");
        assert_eq!(o.u64("u").unwrap(), u64::MAX);
        assert_eq!(o.i64("i").unwrap(), i64::MIN);
        assert_eq!(o.strings("l").unwrap(), ["x", "y"]);
        assert_eq!(o.i64s("n").unwrap(), [1, -2, 0]);
        let mut inner = o.object("o").unwrap();
        assert_eq!(inner.objects("k").unwrap(), [Object::default()]);
        inner.finish().unwrap();
        o.finish().unwrap();
    }

    #[test]
    fn refuses_what_is_not_json_or_not_the_expected_shape() {
        for bad in [
            "",
            "{",
            "}",
            "[]",
            "\"s\"",
            "1",
            "null",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00\"}",
            "{\"a\":\"\\ud800\\u0041\"}",
            "{\"a\":\"\t\"}",
            "{\"a\":1}x",
            "{\"a\":1}{}",
            "{\"a\":1,\"a\":2}",
            "{\"a\":[1 2]}",
            "{\"a\":\"\u{0}\"}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Object::parse(b"{\"a\":\"\xff\"}").is_err());
        // At most MAX_VALUES values, the outer object being one.
        let zeros = |n: usize| format!("{{\"a\":[{}]}}", vec!["0"; n].join(","));
        assert!(parse(&zeros(MAX_VALUES - 2)).is_ok());
        assert_eq!(parse(&zeros(MAX_VALUES - 1)).unwrap_err().0, "too many values");
        // Duplicates among many keys, found without comparing every pair.
        let many: Vec<String> = (0..5000).map(|i| format!("\"k{i}\":{i}")).collect();
        let doc = format!("{{{},\"k4321\":0}}", many.join(","));
        assert_eq!(parse(&doc).unwrap_err().0, "duplicate field `k4321`");
        assert_eq!(parse(&format!("{{{}}}", many.join(","))).unwrap().members.len(), 5000);
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(parse(&deep).unwrap_err().0, "nested too deeply");
        let mut ok = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
        ok.clear();

        let mut o = parse("{\"z\":-0,\"y\":[-0]}").unwrap();
        assert!(o.u64("z").is_err());
        assert!(o.i64s("y").is_err());
        let mut o = parse("{\"f\":1.5,\"e\":1e3,\"big\":18446744073709551616,\"neg\":-1,\"s\":5,\"x\":null}").unwrap();
        assert!(o.u64("f").is_err());
        assert!(o.i64("e").is_err());
        assert!(o.u64("big").is_err());
        assert!(o.u64("neg").is_err());
        assert_eq!(o.string("s").unwrap_err().0, "`s` must be a string, found a number");
        assert_eq!(o.string("missing").unwrap_err().0, "missing field `missing`");
        assert_eq!(o.finish().unwrap_err().0, "unknown field `x`");
        let mut o = parse("{\"i\":-9223372036854775809,\"l\":[\"a\",1],\"n\":[1,\"2\"]}").unwrap();
        assert!(o.i64("i").is_err());
        assert!(o.strings("l").is_err());
        assert!(o.i64s("n").is_err());
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let out = ObjectWriter::new()
            .str("s", "q\"b\\\u{1}\u{8}\u{c}\n\r\t\u{7f}é/")
            .u64("u", u64::MAX)
            .i64s("n", &[0, -1, 42])
            .strs("l", ["a", "b"])
            .object("o", ObjectWriter::new())
            .finish();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"s\":\"q\\\"b\\\\\\u0001\\b\\f\\n\\r\\t\u{7f}é/\",\"u\":18446744073709551615,\
             \"n\":[0,-1,42],\"l\":[\"a\",\"b\"],\"o\":{}}"
        );
        let mut back = Object::parse(&out).unwrap();
        assert_eq!(back.string("s").unwrap(), "q\"b\\\u{1}\u{8}\u{c}\n\r\t\u{7f}é/");
        assert_eq!(back.i64s("n").unwrap(), [0, -1, 42]);
    }

    /// A JSON value from serde_json's model, restricted to what the reader
    /// keeps exactly (integers, not other numbers).
    fn reference_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn same(ours: &Value, reference: &serde_json::Value) -> bool {
        match (ours, reference) {
            (Value::Null, serde_json::Value::Null) => true,
            (Value::Bool(a), serde_json::Value::Bool(b)) => a == b,
            (Value::Int(..), serde_json::Value::Number(n)) => {
                as_i64(ours).map(|v| n.as_i64() == Some(v)).unwrap_or(false)
                    || matches!(ours, Value::Int(false, v) if n.as_u64() == Some(*v))
            }
            (Value::Str(a), serde_json::Value::String(b)) => a == b,
            (Value::Array(a), serde_json::Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Value::Object(a), serde_json::Value::Object(b)) => {
                a.members.len() == b.len() && a.members.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
            }
            _ => false,
        }
    }

    #[test]
    fn escapes_and_reads_specials_at_every_position_of_long_runs() {
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
            for at in 0..48 {
                let mut text: String = "abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEFGHIJ".into();
                text.insert(at, special);
                let mut ours = Vec::new();
                write_string(&mut ours, &text);
                assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{special:?} at {at}");
                let mut doc = b"{\"k\":".to_vec();
                doc.extend_from_slice(&ours);
                doc.push(b'}');
                assert_eq!(Object::parse(&doc).unwrap().string("k").unwrap(), text, "{special:?} at {at}");
                // Unescaped, a quote ends the string early and a control
                // character is refused, wherever it is.
                let raw = format!("{{\"k\":\"{text}\"}}");
                if special != '\\' {
                    assert!(Object::parse(raw.as_bytes()).is_err(), "raw {special:?} at {at}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Whatever serde_json writes (compact or pretty), the reader reads
        /// back as the same value.
        #[test]
        fn reads_what_serde_json_writes(members in proptest::collection::btree_map(
            proptest::prelude::any::<String>(), reference_value(), 0..6), pretty: bool) {
            let reference = serde_json::Value::Object(members.into_iter().collect());
            let text = if pretty { serde_json::to_vec_pretty(&reference) } else { serde_json::to_vec(&reference) };
            let ours = Object::parse(&text.unwrap()).unwrap();
            proptest::prop_assert!(same(&Value::Object(ours), &reference));
        }

        /// Strings are escaped byte for byte as serde_json escapes them.
        #[test]
        fn escapes_strings_as_serde_json_does(s: String) {
            let mut ours = Vec::new();
            write_string(&mut ours, &s);
            proptest::prop_assert_eq!(ours, serde_json::to_vec(&s).unwrap());
        }

        /// Integers are written as serde_json writes them.
        #[test]
        fn writes_integers_as_serde_json_does(n: i64, u: u64) {
            let mut ours = Vec::new();
            write_i64(&mut ours, n);
            proptest::prop_assert_eq!(&ours, &serde_json::to_vec(&n).unwrap());
            ours.clear();
            write_u64(&mut ours, u);
            proptest::prop_assert_eq!(ours, serde_json::to_vec(&u).unwrap());
        }

        /// Arbitrary bytes give a value or an error, never a panic; what
        /// the reader accepts, serde_json accepts too (the reader is the
        /// stricter of the two: duplicate keys, depth).
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                                       text in "[{}\\[\\],:\"a-c0-9.eE+\\-\\\\u ]{0,40}") {
            for input in [bytes.as_slice(), text.as_bytes()] {
                if Object::parse(input).is_ok() {
                    proptest::prop_assert!(serde_json::from_slice::<serde_json::Value>(input).is_ok());
                }
            }
        }
    }
}
