//! List cursors: a position in a bucket's order (Nakama's keyset cursor), opaque to clients.
//!
//! A cursor names the board, the bucket (expiry), the record it was taken at (score, subscore,
//! owner) with that record's rank, and the direction: a "next" cursor resumes strictly after
//! the record, a "prev" cursor strictly before it. Resuming from the record's key rather than
//! from a rank means records moving elsewhere never make a page skip or repeat the others.
//!
//! Wire form: URL-safe base64 (no padding) of a versioned little binary layout.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use uuid::Uuid;

const VERSION: u8 = 1;
/// Longest board id a cursor carries (board ids are at most 128 bytes).
const MAX_ID: usize = 255;

/// A decoded list cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Resume after (`true`) or before (`false`) the record.
    pub is_next: bool,
    pub board: String,
    pub expiry: i64,
    pub score: i64,
    pub subscore: i64,
    pub owner: Uuid,
    /// The rank the record had when the cursor was made.
    pub rank: u64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let id = self.board.as_bytes();
        let id = &id[..id.len().min(MAX_ID)];
        let mut b = Vec::with_capacity(2 + 8 * 4 + 16 + 1 + id.len());
        b.push(VERSION);
        b.push(u8::from(self.is_next));
        b.extend_from_slice(&self.expiry.to_le_bytes());
        b.extend_from_slice(&self.score.to_le_bytes());
        b.extend_from_slice(&self.subscore.to_le_bytes());
        b.extend_from_slice(self.owner.as_bytes());
        b.extend_from_slice(&self.rank.to_le_bytes());
        b.push(id.len() as u8);
        b.extend_from_slice(id);
        URL_SAFE_NO_PAD.encode(b)
    }

    /// Decodes a cursor; `None` when it is not one of ours.
    pub fn decode(s: &str) -> Option<Cursor> {
        // Accept padded input too (Go's URLEncoding pads).
        let b = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
        let (&version, rest) = b.split_first()?;
        if version != VERSION {
            return None;
        }
        let (&next, rest) = rest.split_first()?;
        let i64_at = |r: &[u8], at: usize| -> Option<i64> {
            Some(i64::from_le_bytes(r.get(at..at + 8)?.try_into().ok()?))
        };
        let expiry = i64_at(rest, 0)?;
        let score = i64_at(rest, 8)?;
        let subscore = i64_at(rest, 16)?;
        let owner = Uuid::from_slice(rest.get(24..40)?).ok()?;
        let rank = u64::from_le_bytes(rest.get(40..48)?.try_into().ok()?);
        let len = usize::from(*rest.get(48)?);
        let id = rest.get(49..49 + len)?;
        if rest.len() != 49 + len || next > 1 {
            return None;
        }
        Some(Cursor {
            is_next: next == 1,
            board: String::from_utf8(id.to_vec()).ok()?,
            expiry,
            score,
            subscore,
            owner,
            rank,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for is_next in [true, false] {
            let c = Cursor {
                is_next,
                board: "weekly-ü".into(),
                expiry: 1_700_000_000,
                score: -5,
                subscore: i64::MAX,
                owner: Uuid::new_v4(),
                rank: 12345,
            };
            let s = c.encode();
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(Cursor::decode(&s), Some(c.clone()));
            assert_eq!(Cursor::decode(&format!("{s}==")), Some(c));
        }
    }

    #[test]
    fn garbage_is_refused() {
        for s in ["", "abc", "!!!!", "AQ", &"A".repeat(200)] {
            assert_eq!(Cursor::decode(s), None, "{s}");
        }
        let c = Cursor {
            is_next: true,
            board: "b".into(),
            expiry: 0,
            score: 1,
            subscore: 2,
            owner: Uuid::nil(),
            rank: 1,
        };
        let mut raw = URL_SAFE_NO_PAD.decode(c.encode()).unwrap();
        raw.push(0);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(&raw)), None);
        raw.pop();
        raw[0] = 9;
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(&raw)), None);
    }
}
