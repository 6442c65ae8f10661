//! The WebSocket push protocol (docs/RELAY.md section 6): frames the relay
//! sends and the acknowledgement a client sends.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;
use crate::error::{Error, RelayError};
use crate::response::{Delivered, MessageWire};

/// Exact length of unpadded base64 of `n` bytes.
pub(crate) fn base64_len(n: usize) -> usize {
    (n / 3).saturating_mul(4).saturating_add(match n % 3 {
        0 => 0,
        1 => 2,
        _ => 3,
    })
}

/// Appends one message object, `{"id":…,"sender":…,"envelope":…,"received_at":…}`
/// (with `"type":"message"` first for a push frame). Base64url needs no
/// JSON escaping, so the envelope is encoded straight into `out`.
pub fn write_message(out: &mut Vec<u8>, m: &Delivered, frame: bool) {
    out.push(b'{');
    if frame {
        out.extend_from_slice(b"\"type\":\"message\",");
    }
    out.extend_from_slice(format!("\"id\":{},\"sender\":\"", m.id).as_bytes());
    out.extend_from_slice(B64.encode(m.sender).as_bytes());
    out.extend_from_slice(b"\",\"envelope\":\"");
    let start = out.len();
    out.resize(start.saturating_add(base64_len(m.envelope.len())), 0);
    if let Some(dst) = out.get_mut(start..) {
        let _ = B64.encode_slice(&m.envelope, dst);
    }
    out.extend_from_slice(format!("\",\"received_at\":{}}}", m.received_at).as_bytes());
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

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerWire {
    Message(MessageWire),
    Acked { deleted: u64 },
    Error { code: String, message: String },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientWire {
    Ack { ids: Vec<i64> },
}

impl PushFrame {
    /// Parses a text frame from the relay.
    pub fn decode(text: &str) -> Result<Self, Error> {
        let wire: ServerWire = serde_json::from_str(text).map_err(|_| Error::Malformed { what: "push frame" })?;
        Ok(match wire {
            ServerWire::Message(m) => PushFrame::Message(m.into_delivered()?),
            ServerWire::Acked { deleted } => PushFrame::Acked(deleted),
            ServerWire::Error { code, message } => {
                let code = ErrorCode::from_code(&code).ok_or(Error::Malformed { what: "push error code" })?;
                PushFrame::Error(RelayError::new(code, message))
            }
        })
    }
}

/// The text frame acknowledging (deleting) messages: `{"type":"ack","ids":[…]}`.
pub fn ack_frame(ids: &[i64]) -> String {
    serde_json::to_string(&ClientWire::Ack { ids: ids.to_vec() }).unwrap_or_default()
}

/// Parses a client's frame (the relay's side): the ids of an
/// acknowledgement, or `bad_json` / `bad_ids`.
pub fn decode_ack_frame(text: &str) -> Result<Vec<i64>, RelayError> {
    let ClientWire::Ack { ids } =
        serde_json::from_str(text).map_err(|e| RelayError::new(ErrorCode::BadJson, format!("invalid frame: {e}")))?;
    crate::request::check_ids(&ids)?;
    Ok(ids)
}

/// The relay's answer to an acknowledgement: `{"type":"acked","deleted":n}`.
pub fn acked_frame(deleted: u64) -> String {
    serde_json::to_string(&ServerWire::Acked { deleted }).unwrap_or_default()
}

/// The relay's answer to a refused frame: `{"type":"error","code":…,"message":…}`.
pub fn error_frame(e: &RelayError) -> String {
    serde_json::to_string(&ServerWire::Error { code: e.code.as_str().to_owned(), message: e.message.clone() })
        .unwrap_or_default()
}
