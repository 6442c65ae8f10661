//! Twofish-256 with full or zero keying: the one primitive Sealpost implements
//! itself (issue 6), because the `twofish` crate recomputes its
//! key-dependent tables for every block (about 1.3 MB/s here).
//!
//! With full keying the four key-dependent S-boxes are combined with the
//! MDS matrix into four 256-entry tables at key setup, so the round function
//! `g` is four table look-ups; with zero keying (short messages, where every
//! single-use key would otherwise pay for the tables) `g` runs the q chain
//! every time. The MDS multiplication is a constant table in both. The construction follows the Twofish paper (Schneier et
//! al., 1998): the q0/q1 permutations from their 4-bit tables, the RS code
//! for the S-box key words, the h function, the 40 subkeys, 16 Feistel
//! rounds with input and output whitening.
//!
//! Verified by the official known-answer tables (`core/tests/kat/twofish.json`,
//! 256-bit keys), by a differential test against the `twofish` crate on
//! random keys and blocks, and by the `suite_differential` fuzz target.
//!
//! **Side channels:** the key schedule has no secret-dependent branches
//! (mask arithmetic in GF(2^8), fixed loop counts) and its key words are
//! wiped on drop. Like every table-driven block cipher, though, look-ups
//! indexed by key- and data-dependent bytes (q0/q1 and the MDS tables at key
//! setup, and in every round under zero keying; the four
//! g tables in every round) can leak through cache timing. This is why the
//! Twofish suite is off by default; see docs/SECURITY.md, section 5.

// Every index below is a byte into a 256-entry table (or a nibble into a
// 16-entry one), so it is always in bounds.
#![allow(clippy::indexing_slicing)]
// The const table builders need `as` (no const `From`); every value is a
// byte or a nibble, and every index or subkey product below is small and
// bounded (subkey additions use wrapping arithmetic, as the cipher defines).
#![allow(clippy::as_conversions, clippy::arithmetic_side_effects)]

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The 4-bit tables of q0 and q1.
const Q0_T: [[u8; 16]; 4] = [
    [0x8, 0x1, 0x7, 0xD, 0x6, 0xF, 0x3, 0x2, 0x0, 0xB, 0x5, 0x9, 0xE, 0xC, 0xA, 0x4],
    [0xE, 0xC, 0xB, 0x8, 0x1, 0x2, 0x3, 0x5, 0xF, 0x4, 0xA, 0x6, 0x7, 0x0, 0x9, 0xD],
    [0xB, 0xA, 0x5, 0xE, 0x6, 0xD, 0x9, 0x0, 0xC, 0x8, 0xF, 0x3, 0x2, 0x4, 0x7, 0x1],
    [0xD, 0x7, 0xF, 0x4, 0x1, 0x2, 0x6, 0xE, 0x9, 0xB, 0x3, 0x0, 0x8, 0x5, 0xC, 0xA],
];
const Q1_T: [[u8; 16]; 4] = [
    [0x2, 0x8, 0xB, 0xD, 0xF, 0x7, 0x6, 0xE, 0x3, 0x1, 0x9, 0x4, 0x0, 0xA, 0xC, 0x5],
    [0x1, 0xE, 0x2, 0xB, 0x4, 0xC, 0x3, 0x7, 0x6, 0xD, 0xA, 0x5, 0xF, 0x9, 0x0, 0x8],
    [0x4, 0xC, 0x7, 0x5, 0x1, 0x6, 0x9, 0xA, 0x0, 0xE, 0xD, 0x8, 0x2, 0xB, 0x3, 0xF],
    [0xB, 0x9, 0x5, 0x1, 0xC, 0x3, 0xD, 0xE, 0x6, 0x4, 0x7, 0xF, 0x2, 0x0, 0x8, 0xA],
];

const fn ror4(x: u8) -> u8 {
    ((x >> 1) | (x << 3)) & 0xF
}

const fn q(t: &[[u8; 16]; 4], x: u8) -> u8 {
    let (a0, b0) = (x >> 4, x & 0xF);
    let a1 = a0 ^ b0;
    let b1 = (a0 ^ ror4(b0) ^ (a0 << 3)) & 0xF;
    let (a2, b2) = (t[0][a1 as usize], t[1][b1 as usize]);
    let a3 = a2 ^ b2;
    let b3 = (a2 ^ ror4(b2) ^ (a2 << 3)) & 0xF;
    let (a4, b4) = (t[2][a3 as usize], t[3][b3 as usize]);
    (b4 << 4) | a4
}

const fn q_table(t: &[[u8; 16]; 4]) -> [u8; 256] {
    let mut out = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = q(t, i as u8);
        i += 1;
    }
    out
}

const Q0: [u8; 256] = q_table(&Q0_T);
const Q1: [u8; 256] = q_table(&Q1_T);

/// MDS matrix, field polynomial x^8 + x^6 + x^5 + x^3 + 1.
const MDS: [[u8; 4]; 4] =
    [[0x01, 0xEF, 0x5B, 0x5B], [0x5B, 0xEF, 0xEF, 0x01], [0xEF, 0x5B, 0x01, 0xEF], [0xEF, 0x01, 0xEF, 0x5B]];
const MDS_POLY: u8 = 0x69;

/// GF(2^8) multiplication for the constant tables below (public inputs
/// only, evaluated at compile time); the key schedule uses `gf_mul`.
const fn gf_mul_const(a: u8, b: u8, poly: u8) -> u8 {
    let (mut a, mut b, mut r) = (a, b, 0u8);
    while b != 0 {
        if b & 1 != 0 {
            r ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= poly;
        }
        b >>= 1;
    }
    r
}

/// `MDS_T[j][y]` is the MDS column `j` times the byte `y`, as a word: the
/// multiplication by the MDS matrix as four table look-ups instead of
/// sixteen field multiplications.
const MDS_T: [[u32; 256]; 4] = {
    let mut t = [[0u32; 256]; 4];
    let mut j = 0;
    while j < 4 {
        let mut y = 0;
        while y < 256 {
            let mut i = 0;
            while i < 4 {
                t[j][y] |= (gf_mul_const(MDS[i][j], y as u8, MDS_POLY) as u32) << (8 * i);
                i += 1;
            }
            y += 1;
        }
        j += 1;
    }
    t
};

// --- key schedule: begin ---
// Everything from here to the matching end marker touches key bytes. It is
// branch-free: loops have fixed trip counts, conditional steps are mask
// arithmetic, and the only key-dependent memory accesses are the q0/q1
// look-ups in `h_byte` (docs/SECURITY.md, section 5). A unit test scans this
// section for branching constructs.

/// Multiplication in GF(2^8) modulo `poly` (given without the x^8 bit),
/// in eight fixed steps: each conditional XOR is done with a mask made
/// from the bit (0x00 or 0xFF), so the time does not depend on `a` or `b`.
fn gf_mul(a: u8, b: u8, poly: u8) -> u8 {
    let mut a = a;
    let mut r = 0u8;
    for i in 0..8 {
        r ^= a & ((b >> i) & 1).wrapping_neg();
        let carry = (a >> 7).wrapping_neg();
        a = (a << 1) ^ (poly & carry);
    }
    r
}

/// Reed-Solomon matrix, field polynomial x^8 + x^6 + x^3 + x^2 + 1.
const RS: [[u8; 8]; 4] = [
    [0x01, 0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E],
    [0xA4, 0x56, 0x82, 0xF3, 0x1E, 0xC6, 0x68, 0xE5],
    [0x02, 0xA1, 0xFC, 0xC1, 0x47, 0xAE, 0x3D, 0x19],
    [0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E, 0x03],
];
const RS_POLY: u8 = 0x4D;

/// The MDS column `j` times the byte `y`, as a word (a look-up indexed by
/// a key-dependent byte, like q0/q1).
fn mds_column(j: usize, y: u8) -> u32 {
    MDS_T[j][usize::from(y)]
}

/// q0 and q1, indexed by the stage tables below (0 = q0, 1 = q1).
const Q: [[u8; 256]; 2] = [Q0, Q1];

/// The byte chain of h for byte position `j` (k = 4), given the key words
/// `l[0..4]` as bytes. Which permutation a stage applies depends only on the
/// public position `j`; the byte it permutes is key-dependent (a table
/// look-up, the remaining cache-timing exposure).
fn h_byte(j: usize, x: u8, l: &[[u8; 4]; 4]) -> u8 {
    const STAGE4: [usize; 4] = [1, 0, 0, 1];
    const STAGE3: [usize; 4] = [1, 1, 0, 0];
    const STAGE2: [usize; 4] = [0, 1, 0, 1];
    const STAGE1: [usize; 4] = [0, 0, 1, 1];
    const STAGE0: [usize; 4] = [1, 0, 1, 0];
    let mut y = Q[STAGE4[j]][usize::from(x)] ^ l[3][j];
    y = Q[STAGE3[j]][usize::from(y)] ^ l[2][j];
    y = Q[STAGE2[j]][usize::from(y)] ^ l[1][j];
    y = Q[STAGE1[j]][usize::from(y)] ^ l[0][j];
    Q[STAGE0[j]][usize::from(y)]
}

/// h(X, L) with L given as four little-endian words.
fn h(x: u32, l: &[[u8; 4]; 4]) -> u32 {
    let b = x.to_le_bytes();
    (0..4).fold(0, |z, j| z ^ mds_column(j, h_byte(j, b[j], l)))
}

/// The key words the schedule works from, wiped on drop: the eight
/// 32-bit key words `M`, their even and odd halves `Me` and `Mo`, and the
/// S-box key words from the RS code (in the reverse order h takes them).
#[derive(Zeroize, ZeroizeOnDrop)]
struct KeyWords {
    m: [[u8; 4]; 8],
    me: [[u8; 4]; 4],
    mo: [[u8; 4]; 4],
    s: [[u8; 4]; 4],
}

impl KeyWords {
    fn new(key: &[u8; 32]) -> Self {
        let mut w = Self { m: [[0; 4]; 8], me: [[0; 4]; 4], mo: [[0; 4]; 4], s: [[0; 4]; 4] };
        for (i, word) in w.m.iter_mut().enumerate() {
            word.copy_from_slice(&key[4 * i..4 * i + 4]);
        }
        for i in 0..4 {
            w.me[i] = w.m[2 * i];
            w.mo[i] = w.m[2 * i + 1];
            for (r, row) in RS.iter().enumerate() {
                let mut acc = 0u8;
                for (c, coef) in row.iter().enumerate() {
                    acc ^= gf_mul(*coef, key[8 * i + c], RS_POLY);
                }
                w.s[3 - i][r] = acc;
            }
        }
        w
    }
}

/// How the key-dependent function `g` is evaluated: the Twofish paper's
/// keying options (section 7.3). Both compute the same cipher; they trade
/// key-setup time against time per block.
pub(crate) trait Keying: ZeroizeOnDrop {
    /// g(X) = h(X, S).
    fn g(&self, x: u32) -> u32;
}

/// Full keying: the four key-dependent S-boxes, merged with the MDS matrix
/// into four 256-entry word tables at key setup, so `g` is four look-ups.
/// About 1024 evaluations of the q chain up front; for long messages.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct FullKeying {
    s: [[u32; 256]; 4],
}

/// Zero keying: only the four S-box key words are kept and `g` runs the
/// whole q chain and MDS multiplication on every call. No table setup; for
/// short messages, where a block costs far less than 1024 chains.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ZeroKeying {
    s: [[u8; 4]; 4],
}

/// A Twofish-256 key schedule: the 40 subkeys and the key-dependent `g`
/// (full keying unless stated otherwise). Wiped on drop.
#[derive(Clone)]
pub(crate) struct Twofish256<G: Keying = FullKeying> {
    k: [u32; 40],
    g: G,
}

impl<G: Keying> Drop for Twofish256<G> {
    fn drop(&mut self) {
        self.k.zeroize();
        // `g` wipes itself when it drops (a `ZeroizeOnDrop` type).
    }
}

impl<G: Keying> ZeroizeOnDrop for Twofish256<G> {}

/// The 40 subkeys, from the even and odd key words.
fn subkeys(words: &KeyWords) -> [u32; 40] {
    let mut k = [0u32; 40];
    let rho = 0x0101_0101u32;
    for i in 0..20u32 {
        let a = h(2 * i * rho, &words.me);
        let b = h((2 * i + 1) * rho, &words.mo).rotate_left(8);
        k[2 * i as usize] = a.wrapping_add(b);
        k[2 * i as usize + 1] = a.wrapping_add(b.wrapping_mul(2)).rotate_left(9);
    }
    k
}

impl Twofish256<FullKeying> {
    /// Runs the key schedule with full keying. The subkeys and tables are
    /// written in place into the returned value; the key words are wiped
    /// when `words` drops.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let words = KeyWords::new(key);
        let mut out = Self { k: subkeys(&words), g: FullKeying { s: [[0; 256]; 4] } };
        for (j, table) in out.g.s.iter_mut().enumerate() {
            for (x, entry) in table.iter_mut().enumerate() {
                *entry = mds_column(j, h_byte(j, x as u8, &words.s));
            }
        }
        out
    }
}

impl Twofish256<ZeroKeying> {
    /// Runs the key schedule with zero keying: the subkeys and the S-box
    /// key words only.
    pub(crate) fn new_zero_keyed(key: &[u8; 32]) -> Self {
        let words = KeyWords::new(key);
        Self { k: subkeys(&words), g: ZeroKeying { s: words.s } }
    }
}

impl Keying for ZeroKeying {
    #[inline(always)]
    fn g(&self, x: u32) -> u32 {
        h(x, &self.s)
    }
}
// --- key schedule: end ---

impl Keying for FullKeying {
    #[inline(always)]
    fn g(&self, x: u32) -> u32 {
        let b = x.to_le_bytes();
        self.s[0][usize::from(b[0])]
            ^ self.s[1][usize::from(b[1])]
            ^ self.s[2][usize::from(b[2])]
            ^ self.s[3][usize::from(b[3])]
    }
}

impl<G: Keying> Twofish256<G> {
    #[inline(always)]
    fn g(&self, x: u32) -> u32 {
        self.g.g(x)
    }

    /// Encrypts one 16-byte block in place.
    pub(crate) fn encrypt_block(&self, block: &mut [u8; 16]) {
        let w = |i: usize| u32::from_le_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        let k = &self.k;
        let (mut r0, mut r1, mut r2, mut r3) = (w(0) ^ k[0], w(1) ^ k[1], w(2) ^ k[2], w(3) ^ k[3]);
        for r in (0..16).step_by(2) {
            let t0 = self.g(r0);
            let t1 = self.g(r1.rotate_left(8));
            r2 = (r2 ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 8])).rotate_right(1);
            r3 = r3.rotate_left(1) ^ t0.wrapping_add(t1.wrapping_mul(2)).wrapping_add(k[2 * r + 9]);
            let t0 = self.g(r2);
            let t1 = self.g(r3.rotate_left(8));
            r0 = (r0 ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 10])).rotate_right(1);
            r1 = r1.rotate_left(1) ^ t0.wrapping_add(t1.wrapping_mul(2)).wrapping_add(k[2 * r + 11]);
        }
        let out = [r2 ^ k[4], r3 ^ k[5], r0 ^ k[6], r1 ^ k[7]];
        for (i, v) in out.iter().enumerate() {
            block[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Decrypts one 16-byte block in place.
    pub(crate) fn decrypt_block(&self, block: &mut [u8; 16]) {
        let w = |i: usize| u32::from_le_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        let k = &self.k;
        let (mut r2, mut r3, mut r0, mut r1) = (w(0) ^ k[4], w(1) ^ k[5], w(2) ^ k[6], w(3) ^ k[7]);
        for r in (0..16).step_by(2).rev() {
            let t0 = self.g(r2);
            let t1 = self.g(r3.rotate_left(8));
            r0 = r0.rotate_left(1) ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 10]);
            r1 = (r1 ^ t0.wrapping_add(t1.wrapping_mul(2)).wrapping_add(k[2 * r + 11])).rotate_right(1);
            let t0 = self.g(r0);
            let t1 = self.g(r1.rotate_left(8));
            r2 = r2.rotate_left(1) ^ t0.wrapping_add(t1).wrapping_add(k[2 * r + 8]);
            r3 = (r3 ^ t0.wrapping_add(t1.wrapping_mul(2)).wrapping_add(k[2 * r + 9])).rotate_right(1);
        }
        let out = [r0 ^ k[0], r1 ^ k[1], r2 ^ k[2], r3 ^ k[3]];
        for (i, v) in out.iter().enumerate() {
            block[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// CBC-encrypts `data` (a whole number of blocks) in place.
    pub(crate) fn cbc_encrypt(&self, iv: &[u8; 16], data: &mut [u8]) {
        let mut prev = *iv;
        for chunk in data.chunks_exact_mut(16) {
            let mut block = [0u8; 16];
            for (b, (c, p)) in block.iter_mut().zip(chunk.iter().zip(prev.iter())) {
                *b = c ^ p;
            }
            self.encrypt_block(&mut block);
            chunk.copy_from_slice(&block);
            prev = block;
        }
    }

    /// CBC-decrypts `data` (a whole number of blocks) in place.
    pub(crate) fn cbc_decrypt(&self, iv: &[u8; 16], data: &mut [u8]) {
        let mut prev = *iv;
        for chunk in data.chunks_exact_mut(16) {
            let mut block = [0u8; 16];
            block.copy_from_slice(chunk);
            let ct = block;
            self.decrypt_block(&mut block);
            for (c, (b, p)) in chunk.iter_mut().zip(block.iter().zip(prev.iter())) {
                *c = b ^ p;
            }
            prev = ct;
        }
    }
}

/// Messages of at most this many bytes are processed with zero keying,
/// longer ones with full keying. The length is public (it is the
/// ciphertext's), so the choice leaks nothing, and both give the same bytes.
/// Set from the `suite/Twofish` criterion benchmarks (this machine, loaded):
/// a zero-keyed block costs about 0.3 us against 0.09 us fully keyed, and
/// building the four tables about 2 us, so the two break even near ten
/// blocks.
pub(crate) const ZERO_KEYING_MAX_LEN: usize = 160;

/// The keying a message of `len` bytes gets.
pub(crate) fn keying_for(len: usize) -> KeyingChoice {
    if len <= ZERO_KEYING_MAX_LEN { KeyingChoice::Zero } else { KeyingChoice::Full }
}

/// Which of the paper's keying options a message uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyingChoice {
    /// [`ZeroKeying`].
    Zero,
    /// [`FullKeying`].
    Full,
}

/// CBC-encrypts `data` (a whole number of blocks) in place under a fresh
/// key schedule for `key`, choosing the keying by the length.
pub(crate) fn cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    match keying_for(data.len()) {
        KeyingChoice::Zero => Twofish256::new_zero_keyed(key).cbc_encrypt(iv, data),
        KeyingChoice::Full => Twofish256::new(key).cbc_encrypt(iv, data),
    }
}

/// CBC-decrypts `data` (a whole number of blocks) in place under a fresh
/// key schedule for `key`, choosing the keying by the length.
pub(crate) fn cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    match keying_for(data.len()) {
        KeyingChoice::Zero => Twofish256::new_zero_keyed(key).cbc_decrypt(iv, data),
        KeyingChoice::Full => Twofish256::new(key).cbc_decrypt(iv, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use cbc::cipher::{BlockCipherEncrypt, KeyInit};

    #[test]
    fn q_permutations_are_permutations() {
        let mut seen0 = [false; 256];
        let mut seen1 = [false; 256];
        for x in 0..=255u8 {
            seen0[usize::from(Q0[usize::from(x)])] = true;
            seen1[usize::from(Q1[usize::from(x)])] = true;
        }
        assert!(seen0.iter().all(|s| *s) && seen1.iter().all(|s| *s));
    }

    /// The textbook shift-and-add multiplication, with its branches: the
    /// reference the branch-free `gf_mul` must equal.
    fn gf_mul_reference(mut a: u8, mut b: u8, poly: u8) -> u8 {
        let mut r = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                r ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= poly;
            }
            b >>= 1;
        }
        r
    }

    #[test]
    fn branch_free_gf_mul_equals_the_reference_on_every_input() {
        for poly in [MDS_POLY, RS_POLY] {
            for a in 0..=255u8 {
                for b in 0..=255u8 {
                    assert_eq!(gf_mul(a, b, poly), gf_mul_reference(a, b, poly), "{a:#04x} * {b:#04x} mod {poly:#04x}");
                }
            }
        }
        // Two products from the Twofish paper's field (x^8+x^6+x^5+x^3+1).
        assert_eq!(gf_mul(0x02, 0x80, MDS_POLY), 0x69);
        assert_eq!(gf_mul(0xEF, 0x01, MDS_POLY), 0xEF);
    }

    /// The key-schedule section of this file, comments removed.
    fn key_schedule_source() -> String {
        let src = include_str!("twofish.rs");
        let begin = src.find("// --- key schedule: begin ---").unwrap();
        let end = src.find("// --- key schedule: end ---").unwrap();
        src[begin..end].lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn key_schedule_has_no_branching_constructs() {
        let code = key_schedule_source();
        assert!(code.contains("fn gf_mul(") && code.contains("fn new(key: &[u8; 32]) -> Self"));
        let words: Vec<&str> = code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
        for keyword in ["if", "else", "match", "while", "loop", "break", "continue", "return"] {
            assert!(!words.contains(&keyword), "`{keyword}` in the key schedule");
        }
        for op in ["&&", "||", "==", "!=", "<=", ">=", "?", ".min(", ".max(", "bool"] {
            assert!(!code.contains(op), "`{op}` in the key schedule");
        }
    }

    #[test]
    fn key_words_are_held_in_a_type_that_wipes_on_drop() {
        fn wipes_on_drop<T: ZeroizeOnDrop>(_: &T) {}
        let mut words = KeyWords::new(&[0xA5; 32]);
        wipes_on_drop(&words);
        assert_eq!(words.m[7], [0xA5; 4]);
        assert_eq!(words.mo[3], [0xA5; 4]);
        words.zeroize();
        assert_eq!((words.m, words.me, words.mo, words.s), ([[0; 4]; 8], [[0; 4]; 4], [[0; 4]; 4], [[0; 4]; 4]));
    }

    #[test]
    fn mds_tables_equal_the_branch_free_field_products() {
        for j in 0..4 {
            for y in 0..=255u8 {
                let mut z = 0u32;
                for (i, row) in MDS.iter().enumerate() {
                    z |= u32::from(gf_mul(row[j], y, MDS_POLY)) << (8 * i);
                }
                assert_eq!(mds_column(j, y), z, "column {j}, byte {y:#04x}");
            }
        }
        // The paper's MDS matrix times (1, 0, 0, 0) is its first column.
        assert_eq!(MDS_T[0][1], 0xEFEF_5B01);
    }

    #[test]
    fn keying_is_chosen_by_length_only() {
        assert_eq!(keying_for(16), KeyingChoice::Zero);
        assert_eq!(keying_for(ZERO_KEYING_MAX_LEN), KeyingChoice::Zero);
        assert_eq!(keying_for(ZERO_KEYING_MAX_LEN + 16), KeyingChoice::Full);
        assert_eq!(keying_for(16 * 1024), KeyingChoice::Full);
    }

    #[test]
    fn both_keyings_give_the_same_cbc_bytes_on_either_side_of_the_threshold() {
        let key: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let iv = [0x3C; 16];
        for blocks in [1, 2, ZERO_KEYING_MAX_LEN / 16, ZERO_KEYING_MAX_LEN / 16 + 1, 64] {
            let pt: Vec<u8> = (0..blocks * 16).map(|i| (i * 7 + 1) as u8).collect();
            let (mut by_len, mut full, mut zero) = (pt.clone(), pt.clone(), pt.clone());
            cbc_encrypt(&key, &iv, &mut by_len);
            Twofish256::new(&key).cbc_encrypt(&iv, &mut full);
            Twofish256::new_zero_keyed(&key).cbc_encrypt(&iv, &mut zero);
            assert_eq!(by_len, full, "{blocks} blocks");
            assert_eq!(zero, full, "{blocks} blocks");
            assert_ne!(full, pt);
            cbc_decrypt(&key, &iv, &mut by_len);
            Twofish256::new_zero_keyed(&key).cbc_decrypt(&iv, &mut zero);
            assert_eq!((by_len, zero), (pt.clone(), pt), "{blocks} blocks");
        }
    }

    #[test]
    fn zero_key_zero_block_matches_the_published_table() {
        // ECB_TBL.TXT, KEYSIZE=256, I=1.
        let t = Twofish256::new(&[0; 32]);
        let mut b = [0u8; 16];
        t.encrypt_block(&mut b);
        assert_eq!(b, [0x57, 0xFF, 0x73, 0x9D, 0x4D, 0xC9, 0x2C, 0x1B, 0xD7, 0xFC, 0x01, 0x70, 0x0C, 0xC8, 0x21, 0x6F]);
        t.decrypt_block(&mut b);
        assert_eq!(b, [0; 16]);
    }

    #[test]
    fn differential_against_the_twofish_crate() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200 {
            let mut key = [0u8; 32];
            for chunk in key.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_le_bytes());
            }
            let mine = Twofish256::new(&key);
            let zero = Twofish256::new_zero_keyed(&key);
            let theirs = twofish::Twofish::new_from_slice(&key).unwrap();
            for _ in 0..5 {
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&next().to_le_bytes());
                block[8..].copy_from_slice(&next().to_le_bytes());
                let mut a = block;
                mine.encrypt_block(&mut a);
                let mut z = block;
                zero.encrypt_block(&mut z);
                let mut b = block.into();
                theirs.encrypt_block(&mut b);
                assert_eq!(a.as_slice(), b.as_slice());
                assert_eq!(z, a);
                mine.decrypt_block(&mut a);
                zero.decrypt_block(&mut z);
                assert_eq!((a, z), (block, block));
            }
        }
    }
}
