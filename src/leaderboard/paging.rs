//! Pages of a bucket in rank order, computed on a [`RankCache`] (pure: no actor, no SQL).
//!
//! - [`page`]: Nakama's record listing — the top `limit`, or the `limit` records strictly
//!   after a "next" cursor's record or strictly before a "prev" cursor's record, with the
//!   cursors of the pages on either side. Cursors are keys, not ranks, so a record moving
//!   elsewhere never makes the others skip or repeat across pages.
//! - [`haystack`]: the window Nakama's "records around owner" returns, as ranks.

use std::cmp::Ordering;

use uuid::Uuid;

use super::rank_cache::{RankCache, RankEntry, SortOrder};

/// A record's position key: (score, subscore, owner).
pub type Key = (i64, i64, Uuid);

/// How `a` compares with `b` in board order (`Less` = ranks before).
pub fn compare(order: SortOrder, a: Key, b: Key) -> Ordering {
    let asc = a.cmp(&b);
    match order {
        SortOrder::Ascending => asc,
        SortOrder::Descending => asc.reverse(),
    }
}

pub fn key_of(e: &RankEntry) -> Key {
    (e.score, e.subscore, e.owner)
}

/// How many entries rank strictly before `key` (whether or not `key` is in the cache).
pub fn count_before(cache: &RankCache, key: Key) -> u64 {
    if let Some(e) = cache.get(key.2) {
        if key_of(&e) == key {
            return cache.rank_of(key.2).map_or(0, |r| r - 1);
        }
    }
    // Smallest rank whose entry does not rank before `key`, by binary search over ranks.
    let order = cache.order();
    let (mut lo, mut hi) = (1u64, cache.len() as u64 + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match cache.at_rank(mid) {
            Some(e) if compare(order, key_of(&e), key) == Ordering::Less => lo = mid + 1,
            _ => hi = mid,
        }
    }
    lo - 1
}

/// Where a listing resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Top,
    /// Strictly after this key.
    After(Key),
    /// Strictly before this key.
    Before(Key),
}

/// One page: entries with their ranks, and the entries the neighbouring pages' cursors are
/// taken at (a "next" cursor at the last entry, a "prev" cursor at the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<(u64, RankEntry)>,
    pub next: Option<(u64, RankEntry)>,
    pub prev: Option<(u64, RankEntry)>,
}

/// Up to `limit` entries from `from`, as Nakama pages (a page reached through a cursor always
/// offers a way back).
pub fn page(cache: &RankCache, from: From, limit: usize) -> Page {
    let n = cache.len() as u64;
    let limit = limit.max(1);
    match from {
        From::Top | From::After(_) => {
            let start = match from {
                From::After(key) => {
                    let mut before = count_before(cache, key);
                    if cache.get(key.2).is_some_and(|e| key_of(&e) == key) {
                        before += 1;
                    }
                    before + 1
                }
                _ => 1,
            };
            let entries = cache.range(start, limit);
            let last = entries.last().map_or(start.saturating_sub(1), |e| e.0);
            let next = (last < n).then(|| entries.last().copied()).flatten();
            let prev = match from {
                From::After(_) => entries.first().copied(),
                _ => None,
            };
            Page {
                entries,
                next,
                prev,
            }
        }
        From::Before(key) => {
            let end = count_before(cache, key);
            if end == 0 {
                return Page {
                    entries: Vec::new(),
                    next: None,
                    prev: None,
                };
            }
            let start = end.saturating_sub(limit as u64 - 1).max(1);
            let entries = cache.range(start, (end - start + 1) as usize);
            let prev = (start > 1).then(|| entries.first().copied()).flatten();
            let next = entries.last().copied();
            Page {
                entries,
                next,
                prev,
            }
        }
    }
}

/// The ranks Nakama's haystack returns around the owner at `rank` in a bucket of `n`:
/// (first rank, last rank, whether a prev cursor is offered, whether a next cursor is).
///
/// Nakama fetches up to `limit` records above the owner and `limit / 2` below (more below when
/// there are fewer than that above), then keeps a window of `limit` ending at the bottom of
/// what it fetched — unless fewer than half a window were above, then from the top.
pub fn haystack(n: u64, rank: u64, limit: u64) -> (u64, u64, bool, bool) {
    let limit = limit.max(1);
    let above_avail = rank.saturating_sub(1);
    let above = above_avail.min(limit);
    let mut set_prev = above_avail > limit;
    let mut second_limit = limit / 2;
    if above < second_limit {
        second_limit = limit - above;
    }
    let below_avail = n.saturating_sub(rank);
    let below = below_avail.min(second_limit);
    let set_next = below_avail > second_limit;
    let num = above + 1 + below;
    let start = if num < limit || above < second_limit {
        0
    } else {
        num - limit
    };
    let end = (start + limit).min(num);
    if start > 0 {
        set_prev = true;
    }
    let first = rank - above + start;
    (first, first + (end - start) - 1, set_prev, set_next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(i: u128) -> Uuid {
        Uuid::from_u128(i)
    }

    fn cache(order: SortOrder, scores: &[(u128, i64, i64)]) -> RankCache {
        RankCache::from_entries(
            order,
            scores.iter().map(|&(o, s, ss)| RankEntry {
                owner: owner(o),
                score: s,
                subscore: ss,
                generation: 1,
            }),
        )
    }

    #[test]
    fn compare_follows_board_order_with_owner_ties() {
        let a = (10, 1, owner(1));
        let b = (10, 1, owner(2));
        assert_eq!(compare(SortOrder::Ascending, a, b), Ordering::Less);
        assert_eq!(compare(SortOrder::Descending, a, b), Ordering::Greater);
        assert_eq!(
            compare(SortOrder::Descending, (11, 0, owner(0)), b),
            Ordering::Less
        );
    }

    #[test]
    fn count_before_absent_keys() {
        let c = cache(
            SortOrder::Descending,
            &[(1, 50, 0), (2, 40, 0), (3, 40, 0), (4, 10, 0)],
        );
        // Order: 50/1, 40/3, 40/2, 10/4.
        assert_eq!(count_before(&c, (60, 0, owner(9))), 0);
        assert_eq!(count_before(&c, (50, 0, owner(1))), 0);
        assert_eq!(count_before(&c, (40, 0, owner(2))), 2);
        assert_eq!(count_before(&c, (40, 0, owner(9))), 1);
        assert_eq!(count_before(&c, (40, 0, owner(0))), 3);
        assert_eq!(count_before(&c, (0, 0, owner(0))), 4);
        // A present owner at a different key is searched, not taken from its rank.
        assert_eq!(count_before(&c, (45, 0, owner(4))), 1);
    }

    #[test]
    fn pages_forward_and_back_without_gaps() {
        let scores: Vec<(u128, i64, i64)> =
            (0..103).map(|i| (i as u128, (i % 17) as i64, 0)).collect();
        for order in [SortOrder::Ascending, SortOrder::Descending] {
            let c = cache(order, &scores);
            let mut seen = Vec::new();
            let mut from = From::Top;
            let mut pages = Vec::new();
            loop {
                let p = page(&c, from, 10);
                assert_eq!(p.prev.is_some(), from != From::Top);
                seen.extend(p.entries.iter().map(|e| e.0));
                pages.push(p.clone());
                match p.next {
                    Some((_, e)) => from = From::After(key_of(&e)),
                    None => break,
                }
            }
            assert_eq!(seen, (1..=103).collect::<Vec<u64>>());
            assert_eq!(pages.len(), 11);
            // Back from the last page.
            let last = pages.last().unwrap();
            let (_, first_of_last) = last.prev.unwrap();
            let back = page(&c, From::Before(key_of(&first_of_last)), 10);
            assert_eq!(back.entries, pages[pages.len() - 2].entries);
            assert!(back.prev.is_some() && back.next.is_some());
            let top = page(&c, From::Before(key_of(&pages[1].entries[0].1)), 10);
            assert_eq!(top.entries, pages[0].entries);
            assert_eq!(top.prev, None);
            assert_eq!(
                page(&c, From::Before(key_of(&pages[0].entries[0].1)), 10).entries,
                vec![]
            );
        }
    }

    /// Nakama's slice arithmetic, on explicit lists, for comparison.
    fn nakama_haystack(n: u64, rank: u64, limit: u64) -> (u64, u64, bool, bool) {
        let above: Vec<u64> = (1..rank).rev().take(limit as usize + 1).collect();
        let mut first: Vec<u64> = above.clone();
        let mut set_prev = false;
        if first.len() as u64 > limit {
            set_prev = true;
            first.pop();
        }
        first.reverse();
        let mut second_limit = limit / 2;
        if (first.len() as u64) < second_limit {
            second_limit = limit - first.len() as u64;
        }
        let mut second: Vec<u64> = (rank + 1..=n).take(second_limit as usize + 1).collect();
        let mut set_next = false;
        if second.len() as u64 > second_limit {
            set_next = true;
            second.pop();
        }
        let mut all = first.clone();
        all.push(rank);
        all.extend(second);
        let num = all.len() as i64;
        let mut start = num - limit as i64;
        if start < 0 || (first.len() as u64) < second_limit {
            start = 0;
        }
        let end = (start + limit as i64).min(num);
        if start > 0 {
            set_prev = true;
        }
        let w = &all[start as usize..end as usize];
        (w[0], *w.last().unwrap(), set_prev, set_next)
    }

    #[test]
    fn haystack_matches_nakama() {
        for n in 1..40 {
            for rank in 1..=n {
                for limit in 1..12 {
                    assert_eq!(
                        haystack(n, rank, limit),
                        nakama_haystack(n, rank, limit),
                        "n {n} rank {rank} limit {limit}"
                    );
                }
            }
        }
    }
}
