//! The rank cache against a plain model (a sorted vector, Nakama's comparison written out):
//! ties in both orders, generations, warming, deep trees, rebalancing, and a property test;
//! and the node's buckets ([`super::RankCaches`]).

use super::*;
use proptest::prelude::*;
use std::cmp::Ordering;

fn e(owner: u128, score: i64, subscore: i64, generation: u32) -> RankEntry {
    RankEntry {
        owner: Uuid::from_u128(owner),
        score,
        subscore,
        generation,
    }
}

/// Nakama's comparison written out plainly (the model's order).
fn nakama_cmp(order: SortOrder, a: &RankEntry, b: &RankEntry) -> Ordering {
    let asc = a
        .score
        .cmp(&b.score)
        .then(a.subscore.cmp(&b.subscore))
        .then(a.owner.as_bytes().cmp(b.owner.as_bytes()));
    match order {
        SortOrder::Ascending => asc,
        SortOrder::Descending => asc.reverse(),
    }
}

/// A sorted vector with the same contract.
struct Model {
    order: SortOrder,
    v: Vec<RankEntry>,
}

impl Model {
    fn upsert(&mut self, n: RankEntry) -> bool {
        if let Some(i) = self.v.iter().position(|x| x.owner == n.owner) {
            if n.generation <= self.v[i].generation {
                return false;
            }
            self.v.remove(i);
        }
        self.v.push(n);
        let order = self.order;
        self.v.sort_by(|a, b| nakama_cmp(order, a, b));
        true
    }

    fn remove(&mut self, owner: Uuid) -> bool {
        let before = self.v.len();
        self.v.retain(|x| x.owner != owner);
        before != self.v.len()
    }
}

fn assert_same(cache: &RankCache, model: &Model, owners: &[Uuid]) {
    assert_eq!(cache.len(), model.v.len());
    cache.check_invariants();
    assert_eq!(cache.iter().collect::<Vec<_>>(), model.v);
    let ranks: std::collections::HashMap<Uuid, u64> = model
        .v
        .iter()
        .enumerate()
        .map(|(i, x)| (x.owner, i as u64 + 1))
        .collect();
    for o in owners {
        let want = ranks.get(o).copied();
        assert_eq!(cache.rank_of(*o), want);
        assert_eq!(
            cache.rank_and_entry(*o),
            want.map(|r| (r, model.v[r as usize - 1]))
        );
    }
    for r in 0..=model.v.len() as u64 + 1 {
        let want = r
            .checked_sub(1)
            .and_then(|i| model.v.get(i as usize))
            .copied();
        assert_eq!(cache.at_rank(r), want, "at_rank({r})");
    }
}

#[test]
fn ties_descending() {
    // Higher score first; then higher subscore; then the higher owner id.
    let mut c = RankCache::new(SortOrder::Descending);
    let lo = 0x0100_0000_0000_0000_0000_0000_0000_0000;
    let hi = 0xff00_0000_0000_0000_0000_0000_0000_0000; // top bit set: unsigned compare
    c.upsert(e(lo, 10, 1, 1));
    c.upsert(e(hi, 10, 1, 1));
    c.upsert(e(2, 10, 2, 1));
    c.upsert(e(3, 11, 0, 1));
    c.upsert(e(4, 9, 9, 1));
    let order: Vec<u128> = c.iter().map(|x| x.owner.as_u128()).collect();
    assert_eq!(order, vec![3, 2, hi, lo, 4]);
    assert_eq!(c.rank_of(Uuid::from_u128(hi)), Some(3));
    assert_eq!(c.rank_of(Uuid::from_u128(lo)), Some(4));
    assert_eq!(c.at_rank(1).unwrap().owner.as_u128(), 3);
    assert_eq!(c.at_rank(6), None);
    assert_eq!(c.at_rank(0), None);
}

#[test]
fn ties_ascending() {
    // Lower score first; then lower subscore; then the lower owner id.
    let mut c = RankCache::new(SortOrder::Ascending);
    let hi = 0xff00_0000_0000_0000_0000_0000_0000_0000;
    c.upsert(e(hi, 10, 1, 1));
    c.upsert(e(1, 10, 1, 1));
    c.upsert(e(2, 10, 0, 1));
    c.upsert(e(3, 9, 5, 1));
    c.upsert(e(4, 0, 0, 1));
    let order: Vec<u128> = c.iter().map(|x| x.owner.as_u128()).collect();
    assert_eq!(order, vec![4, 3, 2, 1, hi]);
    assert_eq!(
        c.range(2, 2)
            .iter()
            .map(|(r, x)| (*r, x.owner.as_u128()))
            .collect::<Vec<_>>(),
        vec![(2, 3), (3, 2)]
    );
    assert_eq!(c.range(5, 10).len(), 1);
    assert!(c.range(6, 10).is_empty());
    assert_eq!(c.range(0, 1)[0].0, 1);
    assert!(c.range(1, 0).is_empty());
}

#[test]
fn generations() {
    let mut c = RankCache::new(SortOrder::Descending);
    assert!(c.upsert(e(1, 5, 0, 2)));
    assert!(!c.upsert(e(1, 50, 0, 2)), "same generation");
    assert!(!c.upsert(e(1, 50, 0, 1)), "older generation");
    assert_eq!(c.get(Uuid::from_u128(1)).unwrap().score, 5);
    assert!(c.upsert(e(1, 5, 0, 3)), "newer generation, same score");
    assert_eq!(c.get(Uuid::from_u128(1)).unwrap().generation, 3);
    assert!(c.upsert(e(1, 7, 0, 4)));
    assert_eq!(c.get(Uuid::from_u128(1)).unwrap().score, 7);
    assert!(c.remove(Uuid::from_u128(1)));
    assert!(!c.remove(Uuid::from_u128(1)));
    // After a delete any generation is accepted (a tournament join stores 0).
    assert!(c.upsert(e(1, 0, 0, 0)));
    assert_eq!(c.len(), 1);
}

#[test]
fn warm_sorted_unsorted_duplicates_and_live_updates() {
    let entries: Vec<RankEntry> = (0..5000u128)
        .map(|i| e(i * 7919 % 5003, (i % 97) as i64, (i % 5) as i64, 1))
        .collect();
    for order in [SortOrder::Ascending, SortOrder::Descending] {
        // Distinct owners (7919 and 5003 are coprime).
        let mut v = entries.clone();
        v.sort_by(|a, b| nakama_cmp(order, a, b));
        let model = Model { order, v };
        let owners: Vec<Uuid> = entries.iter().map(|x| x.owner).collect();
        // Unsorted.
        let c = RankCache::from_entries(order, entries.iter().copied());
        assert_same(&c, &model, &owners);
        // Sorted.
        let c = RankCache::from_entries(order, model.v.iter().copied());
        assert_same(&c, &model, &owners);
        // Duplicates: the newest generation wins whatever its position.
        let mut dup = entries.clone();
        dup.push(e(entries[10].owner.as_u128(), 1_000, 0, 5));
        dup.insert(0, e(entries[20].owner.as_u128(), 2_000, 0, 0));
        let c = RankCache::from_entries(order, dup);
        c.check_invariants();
        assert_eq!(c.len(), entries.len());
        assert_eq!(c.get(entries[10].owner).unwrap().score, 1_000);
        assert_eq!(c.get(entries[20].owner), Some(entries[20]));
        // Live updates before warming stay unless the warmed entry is newer.
        let mut c = RankCache::new(order);
        c.upsert(e(entries[0].owner.as_u128(), 77, 0, 9));
        c.upsert(e(entries[1].owner.as_u128(), 78, 0, 1));
        c.upsert(e(123_456, 79, 0, 1));
        c.warm(entries.iter().copied());
        c.check_invariants();
        assert_eq!(c.len(), entries.len() + 1);
        assert_eq!(c.get(entries[0].owner).unwrap().score, 77);
        assert_eq!(
            c.get(entries[1].owner).unwrap().score,
            78,
            "same generation: cached wins"
        );
        // A few entries into a big bucket go one by one.
        c.warm([e(entries[2].owner.as_u128(), 1, 1, 2)]);
        c.check_invariants();
        assert_eq!(c.get(entries[2].owner).unwrap().score, 1);
        // Cloning rebuilds.
        let d = c.clone();
        assert_eq!(d.iter().collect::<Vec<_>>(), c.iter().collect::<Vec<_>>());
    }
    let empty = RankCache::from_entries(SortOrder::Descending, Vec::new());
    assert!(empty.is_empty());
    assert_eq!(empty.at_rank(1), None);
    assert!(empty.range(1, 10).is_empty());
}

/// Deep trees: splits, merges and borrows on inner levels, then the root collapsing.
#[test]
fn stress_against_model() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    for order in [SortOrder::Descending, SortOrder::Ascending] {
        let mut rng = StdRng::seed_from_u64(7);
        let owners: Vec<Uuid> = (0..12_000).map(|_| Uuid::from_u128(rng.gen())).collect();
        let mut c = RankCache::new(order);
        let mut model = std::collections::HashMap::new();
        let mut gens = std::collections::HashMap::new();
        let check = |c: &RankCache, model: &std::collections::HashMap<Uuid, RankEntry>| {
            let mut v: Vec<RankEntry> = model.values().copied().collect();
            v.sort_by(|a, b| nakama_cmp(order, a, b));
            let m = Model { order, v };
            assert_same(c, &m, &owners[..200]);
            let mut rng = StdRng::seed_from_u64(1);
            for _ in 0..200 {
                let o = owners[rng.gen_range(0..owners.len())];
                let want = m.v.iter().position(|x| x.owner == o).map(|i| i as u64 + 1);
                assert_eq!(c.rank_of(o), want);
            }
            for _ in 0..50 {
                let probe = RankEntry {
                    owner: Uuid::from_u128(rng.gen()),
                    score: rng.gen_range(-1..52),
                    subscore: rng.gen_range(0..3),
                    generation: 0,
                };
                let want =
                    m.v.partition_point(|x| nakama_cmp(order, x, &probe) == Ordering::Less);
                assert_eq!(
                    c.count_before(probe.score, probe.subscore, probe.owner),
                    want as u64
                );
            }
            let first = rng.gen_range(0..m.v.len() as u64 + 2);
            let got = c.range(first, 300);
            let skip = first.max(1) as usize - 1;
            let want: Vec<(u64, RankEntry)> =
                m.v.iter()
                    .enumerate()
                    .skip(skip)
                    .take(300)
                    .map(|(i, x)| (i as u64 + 1, *x))
                    .collect();
            assert_eq!(got, want);
        };
        // Grow (ties on purpose: few scores), churn, shrink.
        for phase in 0..3 {
            for _ in 0..40_000 {
                let o = owners[rng.gen_range(0..owners.len())];
                let remove_bias = [0.1, 0.5, 0.95][phase];
                if rng.gen_bool(remove_bias) {
                    assert_eq!(c.remove(o), model.remove(&o).is_some());
                } else {
                    let g = gens.entry(o).or_insert(0u32);
                    *g += rng.gen_range(0..2);
                    let x = RankEntry {
                        owner: o,
                        score: rng.gen_range(0..50),
                        subscore: rng.gen_range(0..3),
                        generation: *g,
                    };
                    let newer = model
                        .get(&o)
                        .is_none_or(|old: &RankEntry| x.generation > old.generation);
                    assert_eq!(c.upsert(x), newer);
                    if newer {
                        model.insert(o, x);
                    }
                }
            }
            check(&c, &model);
        }
        assert!(c.len() < 1000);
        for o in &owners {
            c.remove(*o);
        }
        c.check_invariants();
        assert_eq!((c.len(), c.height), (0, 0));
    }
}

/// Emptying key ranges makes nodes under-full next to full siblings: borrows from the
/// right and from the left on both levels, merges, and the root collapsing.
#[test]
fn range_removals_rebalance() {
    // Bulk-built: leaves of 56, inner nodes of 56 children: 3 inner nodes under the root.
    let n = 56 * 56 * 3;
    for (from_left, order) in [
        (true, SortOrder::Ascending),
        (false, SortOrder::Ascending),
        (true, SortOrder::Descending),
    ] {
        let mut c = RankCache::from_entries(order, (0..n as u128).map(|i| e(i, i as i64, 0, 1)));
        assert_eq!(c.height, 2);
        let mut alive: Vec<u128> = (0..n as u128).collect();
        // Remove the middle inner node's range from one end, checking as we go.
        let mut victims: Vec<u128> = (n as u128 / 3..2 * n as u128 / 3).collect();
        if !from_left {
            victims.reverse();
        }
        for (i, v) in victims.iter().enumerate() {
            assert!(c.remove(Uuid::from_u128(*v)));
            if i % 97 == 0 {
                c.check_invariants();
            }
        }
        alive.retain(|x| !victims.contains(x));
        c.check_invariants();
        let ranked: Vec<u128> = c.iter().map(|x| x.owner.as_u128()).collect();
        let mut want = alive.clone();
        if order == SortOrder::Descending {
            want.reverse();
        }
        assert_eq!(ranked, want);
        for (i, o) in want.iter().enumerate().step_by(101) {
            assert_eq!(c.rank_of(Uuid::from_u128(*o)), Some(i as u64 + 1));
        }
        // Then everything else, from the other end.
        for v in alive.iter().rev() {
            assert!(c.remove(Uuid::from_u128(*v)));
        }
        c.check_invariants();
        assert_eq!((c.len(), c.height), (0, 0));
    }
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(usize, i64, i64, u32),
    Remove(usize),
}

fn op(owners: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..owners, 0i64..6, 0i64..3, 0u32..5).prop_map(|(o, s, ss, g)| Op::Upsert(o, s, ss, g)),
        1 => (0..owners).prop_map(Op::Remove),
    ]
}

fn owner_pool() -> impl Strategy<Value = Vec<Uuid>> {
    prop::collection::hash_set(
        prop_oneof![
            any::<u128>(),
            // Ids differing only in their last bytes, or in the top bit.
            (0u128..300).prop_map(|x| (1u128 << 127) | x),
            (0u128..300),
        ],
        1..250,
    )
    .prop_map(|s| s.into_iter().map(Uuid::from_u128).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn matches_sorted_vec(
        pool in owner_pool(),
        descending in any::<bool>(),
        ops in prop::collection::vec(op(250), 0..700),
        warm_first in prop::collection::vec((0usize..250, 0i64..6, 0i64..3, 0u32..5), 0..200),
        ranges in prop::collection::vec((0u64..260, 0usize..80), 1..8),
        probes in prop::collection::vec((-1i64..7, -1i64..4, 0usize..260, any::<bool>()), 1..12),
    ) {
        let order = if descending { SortOrder::Descending } else { SortOrder::Ascending };
        let mut cache = RankCache::new(order);
        let mut model = Model { order, v: Vec::new() };
        let pick = |i: usize| pool[i % pool.len()];
        let warm: Vec<RankEntry> = warm_first
            .iter()
            .map(|&(o, s, ss, g)| RankEntry { owner: pick(o), score: s, subscore: ss, generation: g })
            .collect();
        cache.warm(warm.iter().copied());
        for w in &warm {
            // warm keeps the newest generation, the first of equals.
            model.upsert(*w);
        }
        for op in &ops {
            match *op {
                Op::Upsert(o, s, ss, g) => {
                    let x = RankEntry { owner: pick(o), score: s, subscore: ss, generation: g };
                    prop_assert_eq!(cache.upsert(x), model.upsert(x));
                }
                Op::Remove(o) => prop_assert_eq!(cache.remove(pick(o)), model.remove(pick(o))),
            }
        }
        assert_same(&cache, &model, &pool);
        for &(first, limit) in &ranges {
            let want: Vec<(u64, RankEntry)> = model
                .v
                .iter()
                .enumerate()
                .skip(first.max(1) as usize - 1)
                .take(limit)
                .map(|(i, x)| (i as u64 + 1, *x))
                .collect();
            prop_assert_eq!(cache.range(first, limit), want);
        }
        for &(score, subscore, o, fresh) in &probes {
            let owner = if fresh { Uuid::from_u128(o as u128) } else { pick(o) };
            let probe = RankEntry { owner, score, subscore, generation: 0 };
            let want = model.v.iter().filter(|x| nakama_cmp(order, x, &probe) == Ordering::Less).count();
            prop_assert_eq!(cache.count_before(score, subscore, owner), want as u64);
        }
    }
}

#[test]
fn caches_blacklist_and_trim() {
    let mut all = RankCaches::new(vec!["*".into()]);
    assert!(all.is_blacklisted("any"));
    assert!(all.get_or_create("any", 0, SortOrder::Ascending).is_none());
    assert!(!all.warm("any", 0, SortOrder::Ascending, [e(1, 1, 1, 1)]));

    let mut caches = RankCaches::new(vec!["off".into()]);
    assert!(caches.is_blacklisted("off"));
    assert!(!caches.is_blacklisted("on"));
    assert!(!caches.insert("off", 0, RankCache::new(SortOrder::Ascending)));
    assert!(caches.get("off", 0).is_none());
    caches
        .get_or_create("on", 0, SortOrder::Descending)
        .unwrap()
        .upsert(e(1, 1, 0, 1));
    assert!(caches.warm(
        "on",
        100,
        SortOrder::Descending,
        [e(1, 2, 0, 1), e(2, 3, 0, 1)]
    ));
    assert!(caches.warm("on", 200, SortOrder::Descending, [e(3, 2, 0, 1)]));
    assert!(caches.insert("t", 150, RankCache::new(SortOrder::Ascending)));
    assert_eq!(caches.bucket_count(), 4);
    assert_eq!(
        caches.get("on", 100).unwrap().rank_of(Uuid::from_u128(2)),
        Some(1)
    );
    caches
        .get_mut("on", 100)
        .unwrap()
        .remove(Uuid::from_u128(2));
    assert_eq!(caches.get("on", 100).unwrap().len(), 1);
    // Expired: expiry set and not after now; 0 never expires.
    assert_eq!(caches.trim_expired(150), 2);
    assert!(caches.get("on", 100).is_none());
    assert!(caches.get("t", 150).is_none());
    assert!(caches.get("on", 0).is_some());
    assert!(caches.get("on", 200).is_some());
    assert!(caches.remove("on", 200).is_some());
    assert!(caches.remove_board("on"));
    assert_eq!(caches.bucket_count(), 0);
    assert!(caches.approx_bytes() == 0);
}
