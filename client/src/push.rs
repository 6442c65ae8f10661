//! The WebSocket push protocol (docs/RELAY.md section 6): frames the relay
//! sends and the acknowledgement a client sends.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::codes::ErrorCode;
use crate::error::{Error, RelayError};
use crate::json::{Fields, JsonError, Object, ObjectWriter, read_object, write_i64, write_u64};
use crate::response::Delivered;

/// Exact length of unpadded base64 of `n` bytes.
pub(crate) fn base64_len(n: usize) -> usize {
    (n / 3).saturating_mul(4).saturating_add(match n % 3 {
        0 => 0,
        1 => 2,
        _ => 3,
    })
}

/// Most bytes of a message object besides its envelope's base64: the
/// names, the id, the sender and the time (148 at most, with a margin).
const MESSAGE_JSON_BYTES: usize = 160;

/// Room for one message object (see [`write_message`]) whose envelope is
/// `envelope_len` bytes.
pub(crate) fn message_len(envelope_len: usize) -> usize {
    base64_len(envelope_len).saturating_add(MESSAGE_JSON_BYTES)
}

/// The push frame of one message, `{"type":"message",…}`, written into a
/// buffer sized for it up front (the relay sends it over WebSocket and MQTT).
pub fn message_frame(m: &Delivered) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message_len(m.envelope.len()));
    write_message(&mut frame, m, true);
    frame
}

/// Appends one message object, `{"id":…,"sender":…,"envelope":…,"received_at":…}`
/// (with `"type":"message"` first for a push frame). Base64url needs no
/// JSON escaping, so the envelope is encoded straight into `out`.
pub fn write_message(out: &mut Vec<u8>, m: &Delivered, frame: bool) {
    out.push(b'{');
    if frame {
        out.extend_from_slice(b"\"type\":\"message\",");
    }
    out.extend_from_slice(b"\"id\":");
    write_i64(out, m.id);
    out.extend_from_slice(b",\"sender\":\"");
    out.extend_from_slice(B64.encode(m.sender).as_bytes());
    out.extend_from_slice(b"\",\"envelope\":\"");
    let start = out.len();
    out.resize(start.saturating_add(base64_len(m.envelope.len())), 0);
    if let Some(dst) = out.get_mut(start..) {
        let _ = B64.encode_slice(&m.envelope, dst);
    }
    out.extend_from_slice(b"\",\"received_at\":");
    write_u64(out, m.received_at);
    out.push(b'}');
}

/// A frame from the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushFrame {
    /// A message from the mailbox.
    Message(Delivered),
    /// An acknowledgement was processed: this many messages were deleted.
    Acked(u64),
    /// The relay refused a frame the client sent (the connection stays open).
    Error(RelayError),
}

impl PushFrame {
    /// Parses a text frame from the relay.
    pub fn decode(text: &str) -> Result<Self, Error> {
        let malformed = |_: JsonError| Error::Malformed { what: "push frame" };
        let mut o = Object::parse(text.as_bytes()).map_err(malformed)?;
        Ok(match o.string("type").map_err(malformed)?.as_str() {
            "message" => PushFrame::Message(Delivered::read(&mut o, "push frame")?),
            "acked" => PushFrame::Acked(o.u64("deleted").map_err(malformed)?),
            "error" => {
                let code = o.string("code").map_err(malformed)?;
                let message = o.string("message").map_err(malformed)?;
                let code = ErrorCode::from_code(&code).ok_or(Error::Malformed { what: "push error code" })?;
                PushFrame::Error(RelayError::new(code, message))
            }
            _ => return Err(Error::Malformed { what: "push frame" }),
        })
    }
}

/// The text frame acknowledging (deleting) messages: `{"type":"ack","ids":[…]}`.
pub fn ack_frame(ids: &[i64]) -> String {
    utf8(ObjectWriter::new().str("type", "ack").i64s("ids", ids).finish())
}

/// Parses a client's frame (the relay's side): the ids of an
/// acknowledgement, or `bad_json` / `bad_ids`.
pub fn decode_ack_frame(text: &str) -> Result<Vec<i64>, RelayError> {
    let ids = read_object(text.as_bytes(), Fields::Strict, |o| {
        let kind = o.string("type")?;
        if kind != "ack" {
            return Err(JsonError(format!("unknown frame type `{kind}`")));
        }
        o.i64s("ids")
    })
    .map_err(|e| RelayError::new(ErrorCode::BadJson, format!("invalid frame: {e}")))?;
    crate::request::check_ids(&ids)?;
    Ok(ids)
}

/// The relay's answer to an acknowledgement: `{"type":"acked","deleted":n}`.
pub fn acked_frame(deleted: u64) -> String {
    utf8(ObjectWriter::new().str("type", "acked").u64("deleted", deleted).finish())
}

/// The relay's answer to a refused frame: `{"type":"error","code":…,"message":…}`.
pub fn error_frame(e: &RelayError) -> String {
    utf8(ObjectWriter::new().str("type", "error").str("code", e.code.as_str()).str("message", &e.message).finish())
}

/// The writer's output is UTF-8 (it copies `str`s and writes ASCII).
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_default()
}
