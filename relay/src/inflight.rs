//! Requests in flight per client address: what bounds the memory one
//! address can pin at once. A request holds a place from the moment it is
//! admitted until the client has taken (almost) all of its response, and a
//! pull (or a static file) holds a second, scarcer place because its page
//! is the largest thing the relay builds. Places live in the response body
//! ([`Body`]) and then in the last buffer hyper queues, so a client that
//! does not read its responses keeps holding them and is refused further
//! ones; nobody else is.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use crate::shards::Shards;

/// How many requests and pulls one address has in flight.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    requests: usize,
    pulls: usize,
}

#[derive(Clone, Copy)]
enum Kind {
    Request,
    Pull,
}

/// The places of every address (an address with none has no entry, so
/// memory follows what is in flight).
pub(crate) struct InFlight {
    max_requests: usize,
    max_pulls: usize,
    shards: Shards<HashMap<IpAddr, Held>>,
}

/// One place; dropping it frees the place.
pub(crate) struct Permit {
    owner: Arc<InFlight>,
    address: IpAddr,
    kind: Kind,
}

impl InFlight {
    /// At most `max_requests` requests and `max_pulls` pulls (or WebSocket
    /// batches) in flight per address.
    pub(crate) fn new(max_requests: usize, max_pulls: usize) -> Arc<Self> {
        Arc::new(Self { max_requests, max_pulls, shards: Shards::new(16) })
    }

    /// A request's place, or `None` when the address holds them all.
    pub(crate) fn request(self: &Arc<Self>, address: IpAddr) -> Option<Permit> {
        self.take(address, Kind::Request)
    }

    /// A pull's place, or `None` when the address holds them all.
    pub(crate) fn pull(self: &Arc<Self>, address: IpAddr) -> Option<Permit> {
        self.take(address, Kind::Pull)
    }

    fn take(self: &Arc<Self>, address: IpAddr, kind: Kind) -> Option<Permit> {
        let mut shard = self.shards.lock_of(&address)?;
        let held = shard.entry(address).or_default();
        let (count, max) = match kind {
            Kind::Request => (&mut held.requests, self.max_requests),
            Kind::Pull => (&mut held.pulls, self.max_pulls),
        };
        if *count >= max {
            if *held == Held::default() {
                shard.remove(&address);
            }
            return None;
        }
        *count = count.saturating_add(1);
        Some(Permit { owner: Arc::clone(self), address, kind })
    }

    fn release(&self, address: IpAddr, kind: Kind) {
        let Some(mut shard) = self.shards.lock_of(&address) else { return };
        let Some(held) = shard.get_mut(&address) else { return };
        match kind {
            Kind::Request => held.requests = held.requests.saturating_sub(1),
            Kind::Pull => held.pulls = held.pulls.saturating_sub(1),
        }
        if *held == Held::default() {
            shard.remove(&address);
        }
    }

    /// Addresses holding at least one place.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        let mut n = 0;
        self.shards.for_each(|s| n += s.len());
        n
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.owner.release(self.address, self.kind);
    }
}

/// Bytes of a response handed to hyper at a time: hyper takes the next
/// slice only when it can write it, so the body lives until the client has
/// read all but the last slices.
const SLICE: usize = 64 * 1024;

/// The last slice of a body, carrying its places: every slice shares the
/// page's one allocation, and hyper (or h2) may keep the last one queued
/// after the body is gone, so the places go only when that buffer is freed.
struct LastSlice {
    bytes: Bytes,
    _held: Vec<Permit>,
}

impl AsRef<[u8]> for LastSlice {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Every response's body: its bytes, handed out in slices, and the places
/// the request holds until they are taken.
pub(crate) struct Body {
    rest: Bytes,
    held: Vec<Permit>,
}

impl Body {
    /// A body of `bytes`.
    pub(crate) fn new(bytes: impl Into<Bytes>) -> Self {
        Self { rest: bytes.into(), held: Vec::new() }
    }

    /// An empty body.
    pub(crate) fn empty() -> Self {
        Self::new(Bytes::new())
    }

    /// Keeps `permit` until the body has been taken or dropped.
    pub(crate) fn hold(&mut self, permit: Permit) {
        self.held.push(permit);
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            this.held.clear();
            return Poll::Ready(None);
        }
        if this.rest.len() <= SLICE {
            let last = LastSlice { bytes: std::mem::take(&mut this.rest), _held: std::mem::take(&mut this.held) };
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_owner(last)))));
        }
        Poll::Ready(Some(Ok(Frame::data(this.rest.split_to(SLICE)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(u64::try_from(self.rest.len()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn places_are_capped_per_address_and_freed_on_drop() {
        let limits = InFlight::new(2, 1);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap());
        let r1 = limits.request(a).unwrap();
        let r2 = limits.request(a).unwrap();
        assert!(limits.request(a).is_none(), "a third request of the same address");
        let p = limits.pull(a).unwrap();
        assert!(limits.pull(a).is_none(), "a second pull");
        assert!(limits.request(b).is_some() && limits.pull(b).is_some(), "another address is not affected");
        drop(r1);
        let r3 = limits.request(a).unwrap();
        drop((r2, r3, p));
        assert_eq!(limits.addresses(), 0, "an address holding nothing has no entry");
        assert!(limits.pull(a).is_some());
    }

    #[tokio::test]
    async fn a_body_comes_in_slices_and_frees_its_places_once_taken() {
        let limits = InFlight::new(1, 1);
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let mut body = Body::new(data.clone());
        body.hold(limits.pull(a).unwrap());
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(200_000));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), SLICE);
        assert!(limits.pull(a).is_none(), "held while bytes remain");
        let mut frames = vec![first];
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames.concat(), data);
        assert!(hyper::body::Body::is_end_stream(&body));
        drop(body);
        assert!(limits.pull(a).is_none(), "held while the last slice is still queued");
        drop(frames);
        assert!(limits.pull(a).is_some(), "freed once the last slice is freed");
        let mut dropped = Body::empty();
        dropped.hold(limits.request(a).unwrap());
        drop(dropped);
        assert!(limits.request(a).is_some(), "and when the body is dropped unread");
    }
}
