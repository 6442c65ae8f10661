//! A terminal chat over a Sealpost relay.
//!
//! Everyone in the room can write to everyone (a broadcast, sealed once
//! with the room's sender keys) or to one person (`/msg`, sealed with the
//! pairwise session). People find each other by handle; the relay binds a
//! handle to an identity key after a one-time code, and the chat shows the
//! safety number to compare out of band.
//!
//! Commands (one per line):
//!
//! | command | what it does |
//! |---|---|
//! | `/claim <handle>` | ask the relay for a verification code |
//! | `/verify <handle> <code>` | bind the handle to this identity |
//! | `/add <handle>` | look the person up, start a session, add them to the room |
//! | `/msg <handle> <text>` | a direct message only they can read |
//! | `/who` | the room's members |
//! | `/safety <handle>` | the safety number to compare with them |
//! | `/quit` | leave |
//! | anything else | a message to everyone in the room |

use std::collections::HashMap;

#[doc(hidden)]
pub mod testing;

use sealpost::{Account, Envelope, IdentityPublic, SafetyNumber, Session, SessionPolicy};
use sealpost::{Incoming, Room};
use sealpost_relay::client::{Client, ClientError, PushEvent};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// The chat's time source for the protocol core (Unix seconds).
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What can end a chat.
#[derive(Debug)]
pub enum ChatError {
    /// The relay failed.
    Relay(ClientError),
    /// The protocol core refused something.
    Protocol(sealpost::Error),
    /// The terminal failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::Relay(e) => write!(f, "relay: {e}"),
            ChatError::Protocol(e) => write!(f, "protocol: {e}"),
            ChatError::Io(e) => write!(f, "terminal: {e}"),
        }
    }
}

impl std::error::Error for ChatError {}

impl From<ClientError> for ChatError {
    fn from(e: ClientError) -> Self {
        ChatError::Relay(e)
    }
}

impl From<sealpost::Error> for ChatError {
    fn from(e: sealpost::Error) -> Self {
        ChatError::Protocol(e)
    }
}

impl From<std::io::Error> for ChatError {
    fn from(e: std::io::Error) -> Self {
        ChatError::Io(e)
    }
}

/// The opening line of a direct message that introduces the sender's handle.
const HELLO: &str = "\u{1}hello-from-handle ";

/// One person's chat state.
pub struct Chat<W> {
    account: Account,
    client: Client,
    room: Room,
    policy: SessionPolicy,
    /// Handles we verified through the relay, by account id.
    names: HashMap<[u8; 32], String>,
    my_handle: Option<String>,
    out: W,
}

impl<W: AsyncWrite + Unpin> Chat<W> {
    /// Creates an identity, publishes its bundle and prekeys, and opens the room.
    pub async fn join(relay: &str, room: &str, out: W) -> Result<Self, ChatError> {
        let mut rng = sealpost::os_rng();
        let policy = SessionPolicy::default();
        let mut account = Account::new(&mut rng, now());
        let client = Client::new(relay, account.relay_signer())?;
        client.publish_bundle(&account.bundle(&policy)?).await?;
        client.upload_prekeys(&account.generate_one_time_prekeys(&mut rng, 20)).await?;
        let room = Room::new(&mut rng, room.as_bytes(), &account, &policy)?;
        Ok(Self { account, client, room, policy, names: HashMap::new(), my_handle: None, out })
    }

    async fn say(&mut self, line: &str) -> Result<(), ChatError> {
        self.out.write_all(line.as_bytes()).await?;
        self.out.write_all(b"\n").await?;
        self.out.flush().await?;
        Ok(())
    }

    fn name_of(&self, id: &IdentityPublic) -> String {
        self.names.get(id.signing_key()).cloned().unwrap_or_else(|| {
            let hex: String = id.signing_key().iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("#{hex}")
        })
    }

    fn member(&self, handle: &str) -> Option<IdentityPublic> {
        let handle = handle.trim_start_matches('@').to_ascii_lowercase();
        self.room.members().find(|m| self.names.get(m.signing_key()) == Some(&handle)).copied()
    }

    async fn send(&self, out: sealpost::Outgoing) -> Result<(), ChatError> {
        let recipients: Vec<[u8; 32]> = match out.recipient {
            Some(r) => vec![*r.signing_key()],
            None => self.room.members().map(|m| *m.signing_key()).collect(),
        };
        if !recipients.is_empty() {
            self.client.deposit(&recipients, &out.envelope).await?;
        }
        Ok(())
    }

    /// Handles one line typed by the user. Returns false on `/quit`.
    pub async fn command(&mut self, line: &str) -> Result<bool, ChatError> {
        let mut rng = sealpost::os_rng();
        let line = line.trim();
        let mut words = line.splitn(3, ' ');
        match words.next().unwrap_or("") {
            "" => {}
            "/quit" => return Ok(false),
            "/claim" => {
                let handle = words.next().unwrap_or("");
                match self.client.claim_handle(handle).await {
                    Ok(()) => self.say(&format!("* a code for {handle} is on its way")).await?,
                    Err(e) => self.say(&format!("! {e}")).await?,
                }
            }
            "/verify" => {
                let (handle, code) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                match self.client.verify_handle(handle, code).await {
                    Ok(()) => {
                        self.my_handle = Some(handle.to_ascii_lowercase());
                        self.say(&format!("* you are @{}", handle.to_ascii_lowercase())).await?;
                    }
                    Err(e) => self.say(&format!("! {e}")).await?,
                }
            }
            "/add" => {
                let handle = words.next().unwrap_or("").trim_start_matches('@').to_ascii_lowercase();
                let identity = match self.client.lookup_handle(&handle).await {
                    Ok(id) => id,
                    Err(e) => return self.say(&format!("! {e}")).await.map(|()| true),
                };
                let (bundle, _) = self.client.fetch_bundle(identity.signing_key()).await?;
                let session = Session::initiate(&mut rng, &mut self.account, &bundle, &self.policy, now())?;
                self.names.insert(*identity.signing_key(), handle.clone());
                let out = self.room.add_member(&mut rng, now(), session)?;
                self.send(out).await?;
                if let Some(me) = self.my_handle.clone() {
                    let hello = self.room.direct(&mut rng, now(), &identity, format!("{HELLO}{me}").as_bytes())?;
                    self.send(hello).await?;
                }
                let sn = SafetyNumber::new(self.account.identity(), &identity);
                self.say(&format!("* @{handle} joined; safety number {sn}")).await?;
            }
            "/msg" => {
                let (handle, text) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                match self.member(handle) {
                    Some(id) => {
                        let out = self.room.direct(&mut rng, now(), &id, text.as_bytes())?;
                        self.send(out).await?;
                    }
                    None => self.say(&format!("! {handle} is not in the room")).await?,
                }
            }
            "/who" => {
                let names: Vec<String> = self.room.members().map(|m| format!("@{}", self.name_of(m))).collect();
                self.say(&format!("* in the room: {}", names.join(" "))).await?;
            }
            "/safety" => {
                let handle = words.next().unwrap_or("");
                match self.member(handle) {
                    Some(id) => {
                        let sn = SafetyNumber::new(self.account.identity(), &id);
                        self.say(&format!("* safety number with {handle}: {sn}")).await?;
                    }
                    None => self.say(&format!("! {handle} is not in the room")).await?,
                }
            }
            _ if line.starts_with('/') => self.say("! unknown command").await?,
            _ => {
                let out = self.room.broadcast(&mut rng, line.as_bytes())?;
                self.send(out).await?;
            }
        }
        Ok(true)
    }

    /// Handles one envelope pushed by the relay.
    pub async fn deliver(&mut self, sender: [u8; 32], envelope: &[u8]) -> Result<(), ChatError> {
        let mut rng = sealpost::os_rng();
        let known = self.room.members().any(|m| m.signing_key() == &sender);
        let incoming = match Envelope::from_bytes(envelope)? {
            // Someone started a new session with us: accept it and join them.
            // The room learns who it is from the session, not from `sender`.
            Envelope::Prekey(first) if !self.room.session(&first.identity).is_some_and(|s| s.matches(&first)) => {
                let (incoming, back) = self.room.accept(&mut rng, now(), &mut self.account, &self.policy, &first)?;
                self.send(back).await?;
                if let Some(me) = self.my_handle.clone() {
                    let hello =
                        self.room.direct(&mut rng, now(), &first.identity, format!("{HELLO}{me}").as_bytes())?;
                    self.send(hello).await?;
                }
                incoming
            }
            // `sender` only picks the pairwise session to try.
            _ if known => self.room.receive(now(), &sender, envelope)?,
            _ => return self.say("! a message from a stranger was dropped").await,
        };
        match incoming {
            Incoming::Broadcast { from, text } => {
                let line = format!("[{}] {}", self.name_of(&from), String::from_utf8_lossy(&text));
                self.say(&line).await?;
            }
            Incoming::Direct { from, text } => {
                let text = String::from_utf8_lossy(&text).into_owned();
                if let Some(handle) = text.strip_prefix(HELLO) {
                    // Believe the handle only if the relay binds it to this identity.
                    let known = self.names.get(from.signing_key()).map(String::as_str) == Some(handle);
                    if !known && self.client.lookup_handle(handle).await.ok().as_ref() == Some(&from) {
                        self.names.insert(*from.signing_key(), handle.to_owned());
                        let sn = SafetyNumber::new(self.account.identity(), &from);
                        self.say(&format!("* @{handle} joined; safety number {sn}")).await?;
                    }
                } else {
                    let line = format!("[{} → you] {text}", self.name_of(&from));
                    self.say(&line).await?;
                }
            }
            Incoming::KeyUpdate { .. } => {}
            _ => {}
        }
        Ok(())
    }

    /// Runs until `/quit` or the end of input: lines from `input`, envelopes
    /// from the relay's push connection.
    pub async fn run<R: AsyncBufRead + Unpin>(mut self, input: R) -> Result<(), ChatError> {
        let mut push = self.client.connect_push().await?;
        let mut lines = input.lines();
        self.say("* connected; /claim and /verify a handle, then /add people").await?;
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    match line? {
                        Some(line) => if !self.command(&line).await? { break },
                        None => break,
                    }
                }
                event = push.next() => {
                    match event {
                        Some(Ok(PushEvent::Message(m))) => {
                            if let Err(e) = self.deliver(m.sender, &m.envelope).await {
                                self.say(&format!("! could not open a message: {e}")).await?;
                            }
                            push.ack(&[m.id]).await?;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                        None => break,
                    }
                }
            }
        }
        push.close().await;
        Ok(())
    }
}
