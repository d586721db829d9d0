//! The stream's decisions end to end, without a network: an origin commits changes and cuts
//! batches; a replica receives them duplicated, reordered, delayed or not at all, and fills
//! what it missed from the origin's buffer or from snapshot pages taken while writes go on.
//! However the deliveries interleave, the replica ends equal to the owner's copy, and no
//! record ever goes back to an older generation.

use std::collections::{HashMap, VecDeque};

use proptest::prelude::*;
use uuid::Uuid;

use super::log::OriginLog;
use super::replica::{ranked, BoardReplica};
use super::state::{classify, LocalChange, Need, OriginCursor, Replicas, Verdict};
use super::wire::{Batch, BoardDef, Change, Generation, Instance};
use super::Blacklist;
use crate::leaderboard::rules::Record;
use crate::persistence::leaderboards::BoardRow;

const BOARD: &str = "weekly";

/// The owner's side: its replica (the actor's state) and its log.
struct Origin {
    replicas: Replicas,
    log: OriginLog,
    instance: Instance,
    num_score: HashMap<(i64, u128), u32>,
}

impl Origin {
    fn new(buffer: usize) -> Origin {
        let mut o = Origin {
            replicas: Replicas::new("o", Blacklist::default(), 1_000),
            log: OriginLog::new("o", 7, buffer),
            instance: Instance {
                create_time: 1,
                epoch: 1,
            },
            num_score: HashMap::new(),
        };
        o.load();
        o
    }

    /// The actor (re)loads the board under a new claim: every record in memory comes along.
    fn load(&mut self) {
        let def = BoardDef::from(&BoardRow::leaderboard(BOARD));
        let mut fresh = BoardReplica::new(def.clone(), "o", self.instance).unwrap();
        if let Some(old) = self.replicas.boards.get(BOARD) {
            for (&expiry, bucket) in &old.buckets {
                for (&owner, rec) in &bucket.records {
                    let mut data = super::replica::record_data(owner, rec);
                    data.generation = Generation {
                        epoch: self.instance.epoch,
                        seq: 0,
                    };
                    fresh.upsert(expiry, &data);
                }
            }
        }
        let records = fresh.len();
        assert!(self.replicas.install_local(fresh));
        self.log.append(
            Change::BoardCreated {
                def,
                instance: self.instance,
                records,
            },
            0,
        );
    }

    fn reload(&mut self) {
        self.instance.epoch += 1;
        self.load();
    }

    fn commit(&mut self, ops: &[(bool, i64, u128, i64)], now: i64) {
        let changes: Vec<LocalChange> = ops
            .iter()
            .map(|&(write, expiry, owner, score)| {
                let n = self.num_score.entry((expiry, owner)).or_insert(0);
                LocalChange {
                    expiry,
                    owner: Uuid::from_u128(owner),
                    record: write.then(|| {
                        *n += 1;
                        (
                            Record {
                                score,
                                subscore: 0,
                                num_score: *n,
                                max_num_score: None,
                                metadata: format!("{{\"s\":{score}}}"),
                                create_time: 1,
                                update_time: now,
                            },
                            Some(format!("p{owner}")),
                        )
                    }),
                }
            })
            .collect();
        for c in self.replicas.commit_local(BOARD, self.instance, changes) {
            self.log.append(c, now);
        }
    }

    /// Serves one need of the replica (one catch-up round, one page).
    fn serve(&self, replica: &mut Replicas, need: Need, page: usize) -> Vec<Need> {
        match need {
            Need::CatchUp { origin, .. } | Need::Boards { origin } => {
                let (inc, since) = replica
                    .origins
                    .get(&origin)
                    .map_or((0, 0), |c| (c.incarnation, c.applied));
                let since = if inc == self.log.incarnation() {
                    since
                } else {
                    0
                };
                match self.log.since(since, page, 1 << 20) {
                    Ok(batch) => {
                        let mut needs = replica.on_batch(&batch, 0).needs;
                        if batch.to < self.log.head() {
                            needs.push(Need::CatchUp {
                                origin,
                                incarnation: 0,
                                since: 0,
                            });
                        }
                        needs
                    }
                    Err(_) => replica.on_boards(
                        "o",
                        self.log.incarnation(),
                        self.log.head(),
                        &self.replicas.local_boards(),
                    ),
                }
            }
            Need::Snapshot {
                board,
                instance,
                after,
                build,
                ..
            } => {
                let head = (self.log.incarnation(), self.log.head());
                match self
                    .replicas
                    .local_page(&board, instance, after, page, 1 << 20, head)
                {
                    Ok(p) => replica.on_page("o", &board, build, p),
                    Err(_) => {
                        replica.snapshot_failed(&board, build);
                        Vec::new()
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A committed batch of writes/deletes: (write?, expiry, owner, score).
    Commit(Vec<(bool, i64, u128, i64)>),
    /// The sender cuts a batch of up to n entries.
    Cut(usize),
    /// Deliver the wire's batch at this index (kept: it may come again).
    Deliver(usize),
    /// Lose the wire's batch at this index.
    Drop(usize),
    /// Serve one pending need, with pages/rounds of this size.
    Serve(usize),
    /// The owner reloads the board under a new claim epoch.
    Reload,
}

fn step() -> impl Strategy<Value = Step> {
    let op = (
        any::<bool>(),
        prop_oneof![Just(0i64), Just(100i64)],
        0u128..6,
        -5i64..50,
    );
    prop_oneof![
        6 => proptest::collection::vec(op, 1..4).prop_map(Step::Commit),
        3 => (1usize..6).prop_map(Step::Cut),
        6 => any::<usize>().prop_map(Step::Deliver),
        1 => any::<usize>().prop_map(Step::Drop),
        4 => (1usize..5).prop_map(Step::Serve),
        1 => Just(Step::Reload),
    ]
}

fn assert_equal(origin: &Origin, replica: &Replicas) {
    let want = origin.replicas.boards.get(BOARD).unwrap();
    let got = replica.serving(BOARD).expect("replica serves the board");
    assert_eq!(got.instance, want.instance);
    let non_empty = |b: &BoardReplica| -> Vec<i64> {
        b.buckets
            .iter()
            .filter(|(_, v)| !v.records.is_empty())
            .map(|(k, _)| *k)
            .collect()
    };
    assert_eq!(non_empty(got), non_empty(want));
    for (expiry, bucket) in &want.buckets {
        let Some(theirs) = got.buckets.get(expiry) else {
            assert!(bucket.records.is_empty());
            continue;
        };
        assert_eq!(ranked(theirs), ranked(bucket), "bucket {expiry}");
        assert_eq!(theirs.records, bucket.records, "bucket {expiry}");
    }
}

fn run(steps: Vec<Step>, buffer: usize) {
    let mut origin = Origin::new(buffer);
    let mut replica = Replicas::new("r", Blacklist::default(), 1_000);
    let mut wire: Vec<Batch> = Vec::new();
    let mut needs: VecDeque<Need> = VecDeque::new();
    let mut seen: HashMap<(i64, Uuid), Generation> = HashMap::new();
    let mut now = 0;
    let check_monotonic = |replica: &Replicas, seen: &mut HashMap<(i64, Uuid), Generation>| {
        if let Some(b) = replica.boards.get(BOARD) {
            for (&expiry, bucket) in &b.buckets {
                for (&owner, rec) in &bucket.records {
                    let last = seen.entry((expiry, owner)).or_default();
                    assert!(rec.generation >= *last, "record went back");
                    *last = rec.generation;
                }
            }
        }
    };
    for s in steps {
        now += 1;
        match s {
            Step::Commit(ops) => origin.commit(&ops, now),
            Step::Cut(n) => wire.extend(origin.log.take_batch(n, 1 << 20)),
            Step::Deliver(i) if !wire.is_empty() => {
                let batch = wire[i % wire.len()].clone();
                needs.extend(replica.on_batch(&batch, now).needs);
            }
            Step::Drop(i) if !wire.is_empty() => {
                wire.remove(i % wire.len());
            }
            Step::Serve(page) => {
                if let Some(need) = needs.pop_front() {
                    needs.extend(origin.serve(&mut replica, need, page));
                }
            }
            Step::Reload => origin.reload(),
            _ => {}
        }
        check_monotonic(&replica, &mut seen);
    }
    // Quiet: the rest of the log goes out, an idle heartbeat follows, and every need is
    // served (the reconcile tick restarts what failed).
    for _ in 0..200 {
        while let Some(b) = origin.log.take_batch(3, 1 << 20) {
            needs.extend(replica.on_batch(&b, now).needs);
        }
        needs.extend(replica.on_batch(&origin.log.heartbeat(), now).needs);
        while let Some(need) = needs.pop_front() {
            needs.extend(origin.serve(&mut replica, need, 3));
            check_monotonic(&replica, &mut seen);
        }
        needs.extend(replica.reconcile(&["o".to_string(), "r".to_string()]));
        if needs.is_empty() && replica.synced(&["o".to_string()]) {
            break;
        }
    }
    assert!(replica.synced(&["o".to_string()]));
    assert_equal(&origin, &replica);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_delivery_order_ends_equal_to_the_owner(steps in proptest::collection::vec(step(), 0..80)) {
        run(steps, 1_000);
    }

    #[test]
    fn a_small_buffer_falls_back_to_snapshots(steps in proptest::collection::vec(step(), 0..80)) {
        run(steps, 4);
    }
}

#[test]
fn classify_duplicates_gaps_and_incarnations() {
    let c = OriginCursor {
        incarnation: 5,
        applied: 10,
        head: 10,
        last_lag_ms: 0,
    };
    assert_eq!(classify(Some(&c), 5, 11, 12), Verdict::Apply);
    assert_eq!(classify(Some(&c), 5, 8, 12), Verdict::Apply, "overlap");
    assert_eq!(classify(Some(&c), 5, 3, 10), Verdict::Duplicate);
    assert_eq!(
        classify(Some(&c), 5, 11, 10),
        Verdict::Duplicate,
        "heartbeat at 10"
    );
    assert_eq!(
        classify(Some(&c), 5, 13, 12),
        Verdict::Gap { since: 10 },
        "heartbeat at 12"
    );
    assert_eq!(classify(Some(&c), 5, 12, 15), Verdict::Gap { since: 10 });
    assert_eq!(
        classify(Some(&c), 4, 1, 50),
        Verdict::Duplicate,
        "an older life"
    );
    assert_eq!(
        classify(Some(&c), 6, 1, 3),
        Verdict::Apply,
        "a new life from its start"
    );
    assert_eq!(classify(Some(&c), 6, 4, 9), Verdict::Gap { since: 0 });
    assert_eq!(classify(None, 1, 1, 0), Verdict::Apply);
    assert_eq!(classify(None, 1, 5, 9), Verdict::Gap { since: 0 });
}

#[test]
fn a_new_instance_keeps_the_old_copy_serving_until_its_snapshot() {
    let mut origin = Origin::new(100);
    let mut replica = Replicas::new("r", Blacklist::default(), 1_000);
    origin.commit(&[(true, 0, 1, 10), (true, 0, 2, 20)], 1);
    let b = origin.log.take_batch(100, 1 << 20).unwrap();
    assert!(replica.on_batch(&b, 1).needs.is_empty());
    assert_eq!(replica.serving(BOARD).unwrap().len(), 2);
    origin.reload();
    origin.commit(&[(true, 0, 3, 30)], 2);
    let b = origin.log.take_batch(100, 1 << 20).unwrap();
    let needs = replica.on_batch(&b, 2).needs;
    assert_eq!(needs.len(), 1, "{needs:?}");
    // Still answering, and following the new owner already.
    assert_eq!(replica.serving(BOARD).unwrap().len(), 3);
    assert!(!replica.synced(&["o".into()]));
    let mut needs: VecDeque<Need> = needs.into();
    while let Some(n) = needs.pop_front() {
        needs.extend(origin.serve(&mut replica, n, 1));
    }
    assert!(replica.synced(&["o".into()]));
    assert_equal(&origin, &replica);
}

#[test]
fn blacklisted_boards_are_neither_logged_nor_applied() {
    let mut o = Replicas::new("o", Blacklist::new(vec!["week*".to_string()]), 10);
    let def = BoardDef::from(&BoardRow::leaderboard(BOARD));
    let r = BoardReplica::new(def.clone(), "o", Instance::default()).unwrap();
    assert!(!o.install_local(r));
    assert!(o
        .commit_local(BOARD, Instance::default(), vec![])
        .is_empty());
    let mut replica = Replicas::new("r", Blacklist::new(vec!["week*".to_string()]), 10);
    let batch = Batch {
        origin: "o".into(),
        incarnation: 1,
        from: 1,
        to: 1,
        entries: vec![super::wire::Entry {
            version: 1,
            committed_ms: 0,
            change: Change::BoardCreated {
                def,
                instance: Instance::default(),
                records: 0,
            },
        }],
    };
    replica.on_batch(&batch, 0);
    assert!(replica.boards.is_empty());
    assert_eq!(replica.origins["o"].applied, 1, "the stream still moves on");
}
