//! Rank cache micro-benchmark: insert rate, rank lookup and record-at-rank at N records,
//! range reads, bytes per record and warm time, each next to a baseline measured in the same
//! run:
//! - "sorted Vec": keys in a sorted `Vec` plus a `HashMap` owner → key; rank by binary
//!   search (O(log n) but static: an insert is an O(n) shift, so it is built by sorting);
//! - "BTreeMap": a `BTreeMap` of keys plus a `HashMap`; inserts are O(log n) but a rank is a
//!   linear count (O(n)).
//!
//! `cargo bench --bench rank_cache` (N = 1,000,000; `SERAI_BENCH_N` overrides). Under
//! `cargo test --all-targets` (no `--bench` argument) it runs a small smoke pass.
//! Heap bytes are counted by a global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use rand::{rngs::StdRng, Rng, SeedableRng};
use serai::leaderboard::rank_cache::{RankCache, RankEntry, SortOrder};
use uuid::Uuid;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// A descending board's key as a plain tuple (for the baselines).
type Key = (
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<u128>,
);

fn key(e: &RankEntry) -> Key {
    use std::cmp::Reverse;
    (
        Reverse(e.score),
        Reverse(e.subscore),
        Reverse(e.owner.as_u128()),
    )
}

fn ns_per(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("SERAI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 20_000 });
    let lookups = if benching { 1_000_000 } else { 20_000 };
    let linear_ops = if benching { 50 } else { 20 };
    println!("rank_cache bench: N = {n} records, descending board");

    let mut rng = StdRng::seed_from_u64(42);
    // Scores with ties (about two records a score), a few subscores, random v4-like owners.
    let entries: Vec<RankEntry> = (0..n)
        .map(|_| RankEntry {
            owner: Uuid::from_u128(rng.gen()),
            score: rng.gen_range(0..(n as i64 / 2).max(1)),
            subscore: rng.gen_range(0..4),
            generation: 1,
        })
        .collect();
    let probe_owners: Vec<Uuid> = (0..lookups)
        .map(|_| entries[rng.gen_range(0..n)].owner)
        .collect();
    let probe_ranks: Vec<u64> = (0..lookups).map(|_| rng.gen_range(1..=n as u64)).collect();

    // --- insert one by one ---
    let before = live();
    let t = Instant::now();
    let mut cache = RankCache::new(SortOrder::Descending);
    for e in &entries {
        cache.upsert(*e);
    }
    let insert_ns = ns_per(t, n);
    let inserted_bytes = (live() - before) as f64 / n as f64;
    let approx_inserted = cache.approx_bytes() as f64 / n as f64;

    let before = live();
    let t = Instant::now();
    let mut btree: BTreeMap<Key, u32> = BTreeMap::new();
    let mut btree_owners: HashMap<Uuid, Key> = HashMap::new();
    for e in &entries {
        btree.insert(key(e), e.generation);
        btree_owners.insert(e.owner, key(e));
    }
    let btree_insert_ns = ns_per(t, n);
    let btree_bytes = (live() - before) as f64 / n as f64;

    // --- warm (bulk build) ---
    let mut shuffled = entries.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.gen_range(0..=i));
    }
    let sorted: Vec<RankEntry> = cache.iter().collect();
    drop(cache);
    let before = live();
    let t = Instant::now();
    let warmed = RankCache::from_entries(SortOrder::Descending, shuffled.iter().copied());
    let warm_unsorted = t.elapsed();
    let warmed_bytes = (live() - before) as f64 / n as f64;
    let approx_warmed = warmed.approx_bytes() as f64 / n as f64;
    let t = Instant::now();
    let warmed_sorted = RankCache::from_entries(SortOrder::Descending, sorted.iter().copied());
    let warm_sorted = t.elapsed();
    drop(warmed_sorted);

    let before = live();
    let t = Instant::now();
    let mut vec_keys: Vec<(Key, u32)> = shuffled.iter().map(|e| (key(e), e.generation)).collect();
    vec_keys.sort_unstable_by_key(|x| x.0);
    let vec_owners: HashMap<Uuid, Key> = shuffled.iter().map(|e| (e.owner, key(e))).collect();
    let vec_build = t.elapsed();
    let vec_bytes = (live() - before) as f64 / n as f64;

    // --- rank lookup by owner ---
    let t = Instant::now();
    let mut sum = 0u64;
    for o in &probe_owners {
        sum += warmed.rank_of(*o).unwrap();
    }
    let rank_ns = ns_per(t, lookups);
    black_box(sum);
    let t = Instant::now();
    let mut vsum = 0u64;
    for o in &probe_owners {
        let k = vec_owners[o];
        vsum += vec_keys.partition_point(|x| x.0 < k) as u64 + 1;
    }
    let vec_rank_ns = ns_per(t, lookups);
    assert_eq!(sum, vsum, "ranks differ from the sorted Vec");
    let t = Instant::now();
    for o in probe_owners.iter().take(linear_ops) {
        let k = btree_owners[o];
        black_box(btree.range(..k).count());
    }
    let btree_rank_ns = ns_per(t, linear_ops);

    // --- record at rank ---
    let t = Instant::now();
    let mut acc = 0i64;
    for &r in &probe_ranks {
        acc = acc.wrapping_add(warmed.at_rank(r).unwrap().score);
    }
    let at_rank_ns = ns_per(t, lookups);
    black_box(acc);
    let t = Instant::now();
    for &r in &probe_ranks {
        black_box(vec_keys[r as usize - 1].1);
    }
    let vec_at_rank_ns = ns_per(t, lookups);
    let t = Instant::now();
    for &r in probe_ranks.iter().take(linear_ops) {
        black_box(btree.iter().nth(r as usize - 1));
    }
    let btree_at_rank_ns = ns_per(t, linear_ops);

    // --- reads as the API does them ---
    let pages = lookups / 10;
    let t = Instant::now();
    for i in 0..pages {
        black_box(warmed.range(1 + (i as u64 % 10) * 100, 100));
    }
    let top_ns = ns_per(t, pages);
    let t = Instant::now();
    for o in probe_owners.iter().take(pages) {
        let r = warmed.rank_of(*o).unwrap();
        black_box(warmed.range(r.saturating_sub(50).max(1), 100));
    }
    let around_ns = ns_per(t, pages);

    // --- updates at N: a newer generation with a new score, then removes ---
    let mut cache = warmed;
    let t = Instant::now();
    for (i, o) in probe_owners.iter().enumerate() {
        cache.upsert(RankEntry {
            owner: *o,
            score: (i as i64 * 7919) % (n as i64),
            subscore: 0,
            generation: 2 + i as u32,
        });
    }
    let update_ns = ns_per(t, lookups);
    let t = Instant::now();
    let removes = probe_owners.len() / 2;
    for o in probe_owners.iter().take(removes) {
        cache.remove(*o);
    }
    let remove_ns = ns_per(t, removes);
    cache.check_invariants();

    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>14}",
        "", "RankCache", "sorted Vec", "BTreeMap"
    );
    println!(
        "{:<34} {:>11.0} ns {:>14} {:>11.0} ns",
        "insert one by one (ns/op)", insert_ns, "O(n) each", btree_insert_ns
    );
    println!(
        "{:<34} {:>11.0} ns {:>11.0} ns {:>11.0} ns",
        "rank of owner (ns/op)", rank_ns, vec_rank_ns, btree_rank_ns
    );
    println!(
        "{:<34} {:>11.0} ns {:>11.0} ns {:>11.0} ns",
        "record at rank (ns/op)", at_rank_ns, vec_at_rank_ns, btree_at_rank_ns
    );
    println!(
        "{:<34} {:>11.1} ms {:>11.1} ms {:>14}",
        "warm / build, unsorted input",
        warm_unsorted.as_secs_f64() * 1e3,
        vec_build.as_secs_f64() * 1e3,
        "-"
    );
    println!(
        "{:<34} {:>11.1} ms {:>14} {:>14}",
        "warm, sorted input",
        warm_sorted.as_secs_f64() * 1e3,
        "-",
        "-"
    );
    println!(
        "{:<34} {:>12.1} B {:>12.1} B {:>12.1} B",
        "heap bytes/record (warmed)", warmed_bytes, vec_bytes, btree_bytes
    );
    println!(
        "{:<34} {:>12.1} B {:>14} {:>14}",
        "heap bytes/record (one by one)", inserted_bytes, "-", "-"
    );
    println!(
        "{:<34} {:>12.1} B {:>14} {:>14}",
        "approx_bytes()/record warmed", approx_warmed, "-", "-"
    );
    println!(
        "{:<34} {:>12.1} B {:>14} {:>14}",
        "approx_bytes()/record one by one", approx_inserted, "-", "-"
    );
    println!("{:<34} {:>11.0} ns", "top page of 100 (ns/op)", top_ns);
    println!(
        "{:<34} {:>11.0} ns",
        "around owner: rank + 100 (ns/op)", around_ns
    );
    println!(
        "{:<34} {:>11.0} ns",
        "update, newer generation (ns/op)", update_ns
    );
    println!("{:<34} {:>11.0} ns", "remove (ns/op)", remove_ns);
    println!();
    println!(
        "ratios: rank lookup {:.2}x the sorted Vec, {:.0}x faster than BTreeMap; at_rank {:.0}x \
         faster than BTreeMap; insert {:.2}x BTreeMap; warm {:.2}x the sorted-Vec build; \
         bytes {:.2}x the sorted Vec, {:.2}x BTreeMap",
        rank_ns / vec_rank_ns,
        btree_rank_ns / rank_ns,
        btree_at_rank_ns / at_rank_ns,
        insert_ns / btree_insert_ns,
        warm_unsorted.as_secs_f64() / vec_build.as_secs_f64(),
        warmed_bytes / vec_bytes,
        warmed_bytes / btree_bytes,
    );
    if benching && n >= 1_000_000 {
        println!(
            "targets at 1M: rank lookup <= 2000 ns: {}; warm <= 5 s: {}",
            if rank_ns <= 2000.0 { "met" } else { "MISSED" },
            if warm_unsorted.as_secs_f64() <= 5.0 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}
