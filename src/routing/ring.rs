//! The placement ring: consistent hashing over the live members, many virtual nodes each.
//!
//! Pure and stable across builds: `hashring` and `siphasher` are pinned to exact versions, and
//! every value hashed here is written as explicit bytes by a hand-written `Hash` (never a
//! derived one, never `write_usize`/`write_u64`, whose bytes depend on the platform), so nodes
//! built by different compilers place every key on the same member. `tests` pins a golden
//! vector of (members, key) → owner.

use std::hash::{Hash, Hasher};

use hashring::HashRing;
use siphasher::sip::SipHasher;

/// One virtual node: a member's id and the replica number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VNode {
    member: String,
    replica: u32,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.member.as_bytes());
        state.write(&[0xff]);
        state.write(&self.replica.to_be_bytes());
    }
}

/// The bytes that place an entity: its kind and its key.
struct KeyBytes<'a> {
    kind: &'a str,
    key: &'a [u8],
}

impl Hash for KeyBytes<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.kind.as_bytes());
        state.write(&[0xff]);
        state.write(self.key);
    }
}

/// The ring of one membership view.
pub struct Ring {
    ring: HashRing<VNode>,
    members: Vec<String>,
    vnodes: u32,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("members", &self.members)
            .field("vnodes", &self.vnodes)
            .finish()
    }
}

impl Ring {
    /// A ring of `members` (order does not matter) with `vnodes` virtual nodes each.
    pub fn new(members: &[String], vnodes: usize) -> Ring {
        let vnodes = vnodes.clamp(1, 1 << 16) as u32;
        let mut sorted: Vec<String> = members.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut ring = HashRing::new();
        ring.batch_add(
            sorted
                .iter()
                .flat_map(|m| {
                    (0..vnodes).map(move |replica| VNode {
                        member: m.clone(),
                        replica,
                    })
                })
                .collect(),
        );
        Ring {
            ring,
            members: sorted,
            vnodes,
        }
    }

    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The member owning `key` of `kind`; `None` only for an empty ring.
    pub fn owner(&self, kind: &str, key: &[u8]) -> Option<&str> {
        self.ring
            .get(&KeyBytes { kind, key })
            .map(|v| v.member.as_str())
    }

    /// The fraction of the hash space `member` owns (0.0–1.0).
    pub fn share(&self, member: &str) -> f64 {
        let mut points: Vec<(u64, bool)> = self
            .members
            .iter()
            .flat_map(|m| {
                (0..self.vnodes).map(move |r| {
                    (
                        hash_of(&VNode {
                            member: m.clone(),
                            replica: r,
                        }),
                        m == member,
                    )
                })
            })
            .collect();
        if points.is_empty() {
            return 0.0;
        }
        points.sort();
        // A key belongs to the first vnode at or after its hash (wrapping): each vnode owns the
        // arc ending at its point.
        let mut owned: u128 = 0;
        for (i, (point, mine)) in points.iter().enumerate() {
            if !mine {
                continue;
            }
            let prev = if i == 0 {
                points[points.len() - 1].0
            } else {
                points[i - 1].0
            };
            owned += point.wrapping_sub(prev) as u128;
        }
        if points.len() == 1 {
            return 1.0;
        }
        owned as f64 / (u64::MAX as f64 + 1.0)
    }
}

fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut h = SipHasher::new();
    value.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("serai-{i}")).collect()
    }

    /// Golden vector: these owners must never change, whatever compiler built the node.
    /// Regenerate only with a deliberate, cluster-wide placement change.
    #[test]
    fn golden_vector() {
        let ring = Ring::new(&members(3), 128);
        let cases: &[(&str, &str, &str)] = &[
            (
                "character",
                "00000000-0000-0000-0000-000000000001",
                GOLDEN[0],
            ),
            (
                "character",
                "8f14e45f-ceea-467f-a8f1-4b8f5d3c0a11",
                GOLDEN[1],
            ),
            (
                "character",
                "c9f0f895-fb98-4b9f-9b1c-2d3e4f5a6b7c",
                GOLDEN[2],
            ),
            ("market", "ironhold", GOLDEN[3]),
            ("market", "port_azul", GOLDEN[4]),
            ("market", "greenmarsh", GOLDEN[5]),
            ("leaderboard", "wealth", GOLDEN[6]),
            ("leaderboard", "battles_won", GOLDEN[7]),
            ("battle", "", GOLDEN[8]),
        ];
        let got: Vec<&str> = cases
            .iter()
            .map(|(k, key, _)| ring.owner(k, key.as_bytes()).unwrap())
            .collect();
        let want: Vec<&str> = cases.iter().map(|c| c.2).collect();
        assert_eq!(got, want);
        assert_eq!(
            hash_of(&KeyBytes {
                kind: "market",
                key: b"ironhold"
            }),
            GOLDEN_HASH
        );
    }

    const GOLDEN: [&str; 9] = [
        "serai-1", "serai-0", "serai-0", "serai-1", "serai-1", "serai-0", "serai-1", "serai-1",
        "serai-2",
    ];
    const GOLDEN_HASH: u64 = 8_096_938_386_881_144_461;

    #[test]
    fn member_order_does_not_matter() {
        let a = Ring::new(&members(3), 128);
        let mut rev = members(3);
        rev.reverse();
        let b = Ring::new(&rev, 128);
        for i in 0..1000u32 {
            let key = i.to_be_bytes();
            assert_eq!(a.owner("character", &key), b.owner("character", &key));
        }
    }

    #[test]
    fn shares_are_balanced_and_sum_to_one() {
        let ring = Ring::new(&members(3), 128);
        let shares: Vec<f64> = ring.members().iter().map(|m| ring.share(m)).collect();
        let total: f64 = shares.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{shares:?}");
        for s in &shares {
            assert!((0.2..0.47).contains(s), "{shares:?}");
        }
        let mut counts = std::collections::HashMap::new();
        for i in 0..30_000u32 {
            *counts
                .entry(ring.owner("character", &i.to_be_bytes()).unwrap())
                .or_insert(0) += 1;
        }
        for (m, n) in counts {
            let expected = ring.share(m) * 30_000.0;
            assert!(
                (n as f64 - expected).abs() < expected * 0.1,
                "{m}: {n} vs {expected}"
            );
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_keys() {
        let three = Ring::new(&members(3), 128);
        let two = Ring::new(&members(2), 128);
        for i in 0..5000u32 {
            let key = i.to_be_bytes();
            let before = three.owner("character", &key).unwrap();
            if before != "serai-2" {
                assert_eq!(two.owner("character", &key), Some(before));
            }
        }
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(Ring::new(&[], 128).owner("x", b"k"), None);
        let one = Ring::new(&members(1), 128);
        assert_eq!(one.owner("x", b"k"), Some("serai-0"));
        assert!((one.share("serai-0") - 1.0).abs() < 1e-9);
    }
}
