//! Strict big-endian reading and writing of the wire formats.
//!
//! Every read is length-checked and returns [`Error::Malformed`] naming the
//! structure being parsed; nothing here can panic on untrusted input.

use alloc::vec::Vec;

use crate::error::{Error, Result};

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`; errors will name `what`.
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }

    fn malformed(&self) -> Error {
        Error::Malformed(self.what)
    }

    /// Takes exactly `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(self.malformed());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| self.malformed())
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a `u8` count followed by that many bytes.
    pub(crate) fn bytes_u8(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// Reads a `u32` length followed by that many bytes, refusing lengths
    /// above `max`.
    pub(crate) fn bytes_u32(&mut self, max: usize) -> Result<&'a [u8]> {
        let n = usize::try_from(self.u32()?).map_err(|_| self.malformed())?;
        if n > max {
            return Err(self.malformed());
        }
        self.take(n)
    }

    /// How many bytes have not been read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() { Ok(()) } else { Err(self.malformed()) }
    }
}

/// Where encoders write: a `Vec<u8>`, or the fixed-size buffer that holds
/// pickle secrets (`pickle::SecretBuffer`).
pub(crate) trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for zeroize::Zeroizing<Vec<u8>> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Appends a `u32` big-endian.
pub(crate) fn put_u32<S: Sink + ?Sized>(out: &mut S, v: u32) {
    out.put(&v.to_be_bytes());
}

/// Appends a `u64` big-endian.
pub(crate) fn put_u64<S: Sink + ?Sized>(out: &mut S, v: u64) {
    out.put(&v.to_be_bytes());
}

/// Appends a `u8` count and the bytes. Callers guarantee `bytes.len() <= 255`.
pub(crate) fn put_bytes_u8<S: Sink + ?Sized>(out: &mut S, bytes: &[u8]) -> Result<()> {
    let n = u8::try_from(bytes.len()).map_err(|_| Error::TooLarge)?;
    out.put(&[n]);
    out.put(bytes);
    Ok(())
}

/// Appends a `u32` length and the bytes.
pub(crate) fn put_bytes_u32<S: Sink + ?Sized>(out: &mut S, bytes: &[u8]) -> Result<()> {
    let n = u32::try_from(bytes.len()).map_err(|_| Error::TooLarge)?;
    put_u32(out, n);
    out.put(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_malformed_not_panic() {
        let mut r = Reader::new(&[1, 2], "thing");
        assert_eq!(r.u32(), Err(Error::Malformed("thing")));
        let mut r = Reader::new(&[0, 0, 0, 9, 1], "thing");
        assert_eq!(r.bytes_u32(100), Err(Error::Malformed("thing")));
        let mut r = Reader::new(&[0, 0, 1, 0], "thing");
        assert_eq!(r.bytes_u32(255), Err(Error::Malformed("thing")));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut r = Reader::new(&[7, 8], "thing");
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.finish(), Err(Error::Malformed("thing")));
    }
}
