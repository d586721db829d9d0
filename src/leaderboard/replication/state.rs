//! Every board replica of a node and the decisions of the stream (pure: no actor, no I/O).
//!
//! - **Per origin** the node remembers the incarnation and the last version it applied
//!   ([`classify`]): a batch that continues it is applied, one already applied is a duplicate,
//!   one that starts later is a gap, filled with a catch-up from the origin's buffer
//!   ([`Need::CatchUp`]) or, when the buffer no longer has it, a full resync ([`Need::Boards`]).
//! - **Per board** a replica follows one owner instance; a newer instance (failover, handoff,
//!   restart) or a full resync builds a fresh copy from snapshot pages ([`Need::Snapshot`])
//!   while the old copy keeps answering reads. Every rank change of the board applied meanwhile
//!   is kept and replayed onto the fresh copy before it replaces the old one: pages are read
//!   at versions after the build started, so page plus replay (generation-guarded) is exact.
//! - **On the origin** (`origin.rs`) the owner's actor installs its loaded board and applies
//!   each committed batch ([`Replicas::commit_local`]), which stamps the generations and yields
//!   the changes for the log: the node's own reads see a write before its writer is answered.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::super::rules::Record;
use super::replica::BoardReplica;
use super::wire::{Batch, Change, Instance, Page, SnapshotCursor};
use super::Blacklist;

/// What an origin's stream has given this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginCursor {
    pub incarnation: u64,
    /// The last version applied.
    pub applied: u64,
    /// The highest version the origin said it had.
    pub head: u64,
    /// Commit-to-apply lag of the last entry applied (ms).
    pub last_lag_ms: i64,
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Apply,
    Duplicate,
    /// Entries after `since` are missing.
    Gap {
        since: u64,
    },
}

/// Where batch `from..=to` of `incarnation` stands against what was applied.
pub fn classify(cursor: Option<&OriginCursor>, incarnation: u64, from: u64, to: u64) -> Verdict {
    match cursor {
        Some(c) if incarnation < c.incarnation => Verdict::Duplicate,
        Some(c) if incarnation == c.incarnation => {
            if to <= c.applied {
                Verdict::Duplicate
            } else if from > c.applied + 1 {
                Verdict::Gap { since: c.applied }
            } else {
                Verdict::Apply
            }
        }
        // A new origin or a new life of one: its log starts at version 1.
        _ if from <= 1 => Verdict::Apply,
        _ => Verdict::Gap { since: 0 },
    }
}

/// Something the node must ask an origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Need {
    CatchUp {
        origin: String,
        incarnation: u64,
        since: u64,
    },
    Boards {
        origin: String,
    },
    Snapshot {
        origin: String,
        board: String,
        instance: Instance,
        after: Option<SnapshotCursor>,
        /// The build the pages are for (a restarted build ignores an older one's pages).
        build: u64,
    },
}

/// What applying a batch did.
#[derive(Debug, Default)]
pub struct Applied {
    pub verdict: Option<Verdict>,
    pub entries: usize,
    /// Commit-to-apply lag of each entry applied (ms).
    pub lags_ms: Vec<i64>,
    pub needs: Vec<Need>,
}

/// A fresh copy being built from snapshot pages.
#[derive(Debug)]
pub(super) struct Build {
    id: u64,
    origin: String,
    instance: Instance,
    fresh: Option<BoardReplica>,
    replay: Vec<Change>,
}

/// A committed change of the owner's actor.
#[derive(Debug, Clone)]
pub struct LocalChange {
    pub expiry: i64,
    pub owner: Uuid,
    /// The record now; `None`: deleted.
    pub record: Option<(Record, Option<String>)>,
}

/// The replicas of one node.
#[derive(Debug)]
pub struct Replicas {
    pub(super) me: String,
    pub(super) blacklist: Blacklist,
    /// Rank changes kept for one build before it is restarted.
    replay_limit: usize,
    pub boards: HashMap<String, BoardReplica>,
    pub origins: HashMap<String, OriginCursor>,
    pub(super) builds: HashMap<String, Build>,
    /// Boards whose copy is missing or stale until a snapshot of (origin, instance) completes.
    pub(super) stale: HashMap<String, (String, Instance)>,
    next_build: u64,
}

impl Replicas {
    pub fn new(me: impl Into<String>, blacklist: Blacklist, replay_limit: usize) -> Replicas {
        Replicas {
            me: me.into(),
            blacklist,
            replay_limit: replay_limit.max(1),
            boards: HashMap::new(),
            origins: HashMap::new(),
            builds: HashMap::new(),
            stale: HashMap::new(),
            next_build: 0,
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn replicated(&self, board: &str) -> bool {
        self.blacklist.replicated(board)
    }

    /// The board's replica when it may answer reads.
    pub fn serving(&self, board: &str) -> Option<&BoardReplica> {
        self.boards.get(board).filter(|b| b.serving)
    }

    /// Boards waiting for a snapshot.
    pub fn stale_count(&self) -> usize {
        self.stale.len()
    }

    // -------------------------------------------------------------------------------------
    // The stream
    // -------------------------------------------------------------------------------------

    /// Applies a batch from another node (pushed, or answering a catch-up).
    pub fn on_batch(&mut self, batch: &Batch, now_ms: i64) -> Applied {
        let mut out = Applied::default();
        if batch.origin == self.me {
            return out;
        }
        let cursor = self.origins.get(&batch.origin);
        let verdict = classify(cursor, batch.incarnation, batch.from, batch.to);
        out.verdict = Some(verdict);
        if let Some(c) = self.origins.get_mut(&batch.origin) {
            if c.incarnation == batch.incarnation {
                c.head = c.head.max(batch.to);
            }
        }
        match verdict {
            Verdict::Duplicate => {}
            Verdict::Gap { since } => out.needs.push(Need::CatchUp {
                origin: batch.origin.clone(),
                incarnation: batch.incarnation,
                since,
            }),
            Verdict::Apply => {
                let fresh = OriginCursor {
                    incarnation: batch.incarnation,
                    applied: 0,
                    head: batch.to,
                    last_lag_ms: 0,
                };
                let c = self.origins.entry(batch.origin.clone()).or_default();
                if c.incarnation != batch.incarnation {
                    *c = fresh;
                }
                let applied = c.applied;
                for e in batch.entries.iter().filter(|e| e.version > applied) {
                    self.apply(&batch.origin, &e.change, &mut out.needs);
                    out.entries += 1;
                    out.lags_ms.push((now_ms - e.committed_ms).max(0));
                }
                let c = self.origins.entry(batch.origin.clone()).or_default();
                c.applied = c.applied.max(batch.to);
                c.head = c.head.max(batch.to);
                if let Some(&lag) = out.lags_ms.last() {
                    c.last_lag_ms = lag;
                }
            }
        }
        out
    }

    fn apply(&mut self, origin: &str, change: &Change, needs: &mut Vec<Need>) {
        let id = change.board();
        if !self.replicated(id) {
            return;
        }
        match change {
            Change::BoardCreated {
                def,
                instance,
                records,
            } => {
                if self.boards.get(id).is_some_and(|b| b.instance >= *instance) {
                    return;
                }
                if self.builds.get(id).is_some_and(|b| b.instance >= *instance) {
                    return;
                }
                let Ok(mut fresh) = BoardReplica::new(def.clone(), origin, *instance) else {
                    tracing::warn!(board = %id, "replicated board definition is unusable");
                    self.drop_board_upto(id, *instance);
                    return;
                };
                if *records == 0 {
                    fresh.serving = true;
                    self.builds.remove(id);
                    self.stale.remove(id);
                    self.boards.insert(id.to_string(), fresh);
                    return;
                }
                // Keep answering from the old copy while a fresh one is built; it follows the
                // new owner's changes meanwhile.
                if let Some(live) = self.boards.get_mut(id) {
                    live.origin = origin.to_string();
                    live.instance = *instance;
                    live.def = fresh.def;
                    live.board = fresh.board;
                }
                needs.push(self.start_build(id, origin, *instance));
            }
            Change::BoardDeleted { instance, .. } => self.drop_board_upto(id, *instance),
            Change::RankUpdated { expiry, record, .. } => {
                if let Some(b) = self.boards.get_mut(id) {
                    if record.generation.epoch >= b.instance.epoch {
                        b.upsert(*expiry, record);
                    }
                }
                self.keep_for_replay(id, change, needs);
            }
            Change::RankDeleted {
                expiry,
                owner,
                generation,
                ..
            } => {
                if let Some(b) = self.boards.get_mut(id) {
                    if generation.epoch >= b.instance.epoch {
                        b.delete(*expiry, *owner, *generation);
                    }
                }
                self.keep_for_replay(id, change, needs);
            }
        }
    }

    fn keep_for_replay(&mut self, id: &str, change: &Change, needs: &mut Vec<Need>) {
        let Some(build) = self.builds.get_mut(id) else {
            return;
        };
        if build.replay.len() < self.replay_limit {
            build.replay.push(change.clone());
            return;
        }
        // Too many changes while the pages came in: start over.
        let (origin, instance) = (build.origin.clone(), build.instance);
        needs.push(self.start_build(id, &origin, instance));
    }

    fn start_build(&mut self, id: &str, origin: &str, instance: Instance) -> Need {
        self.stale
            .insert(id.to_string(), (origin.to_string(), instance));
        self.next_build += 1;
        let build = self.next_build;
        self.builds.insert(
            id.to_string(),
            Build {
                id: build,
                origin: origin.to_string(),
                instance,
                fresh: None,
                replay: Vec::new(),
            },
        );
        Need::Snapshot {
            origin: origin.to_string(),
            board: id.to_string(),
            instance,
            after: None,
            build,
        }
    }

    pub(super) fn drop_board_upto(&mut self, id: &str, instance: Instance) {
        if self.boards.get(id).is_some_and(|b| b.instance <= instance) {
            self.boards.remove(id);
        }
        if self.builds.get(id).is_some_and(|b| b.instance <= instance) {
            self.builds.remove(id);
        }
        if self.stale.get(id).is_some_and(|s| s.1 <= instance) {
            self.stale.remove(id);
        }
    }

    /// The origin's buffer no longer has what this node missed: `boards` is everything it
    /// owns at its log `version`. The stream continues from there; every board is rebuilt.
    pub fn on_boards(
        &mut self,
        origin: &str,
        incarnation: u64,
        version: u64,
        boards: &[(String, Instance)],
    ) -> Vec<Need> {
        let c = self.origins.entry(origin.to_string()).or_default();
        *c = OriginCursor {
            incarnation,
            applied: version,
            head: c.head.max(version),
            last_lag_ms: c.last_lag_ms,
        };
        let listed: HashSet<&str> = boards.iter().map(|(id, _)| id.as_str()).collect();
        let gone: Vec<String> = self
            .boards
            .values()
            .filter(|b| b.origin == origin && !listed.contains(b.id()))
            .map(|b| b.id().to_string())
            .collect();
        for id in gone {
            self.boards.remove(&id);
            self.builds.remove(&id);
            self.stale.remove(&id);
        }
        let mut needs = Vec::new();
        for (id, instance) in boards {
            if !self.replicated(id) || self.boards.get(id).is_some_and(|b| b.instance > *instance) {
                continue;
            }
            if let Some(live) = self.boards.get_mut(id) {
                live.origin = origin.to_string();
                live.instance = *instance;
            }
            needs.push(self.start_build(id, origin, *instance));
        }
        needs
    }

    /// A snapshot page arrived; returns the request for the next one, if any.
    pub fn on_page(&mut self, origin: &str, board: &str, build_id: u64, page: Page) -> Vec<Need> {
        let Some(build) = self.builds.get_mut(board).filter(|b| b.id == build_id) else {
            return Vec::new();
        };
        let current = self.origins.get(origin).map(|c| c.incarnation);
        if build.origin != origin
            || build.instance != page.instance
            || current != Some(page.incarnation)
        {
            // The board moved or its owner restarted since: that news starts a new build.
            self.builds.remove(board);
            return Vec::new();
        }
        if build.fresh.is_none() {
            match BoardReplica::new(page.def.clone(), origin, page.instance) {
                Ok(mut fresh) => {
                    for expiry in &page.buckets {
                        fresh
                            .buckets
                            .entry(*expiry)
                            .or_insert_with(|| super::replica::Bucket {
                                cache: super::super::rank_cache::RankCache::new(fresh.board.order),
                                records: HashMap::new(),
                            });
                    }
                    build.fresh = Some(fresh);
                }
                Err(_) => {
                    self.builds.remove(board);
                    return Vec::new();
                }
            }
        }
        let Some(fresh) = build.fresh.as_mut() else {
            return Vec::new();
        };
        for (expiry, data) in &page.records {
            fresh.upsert(*expiry, data);
        }
        if let Some(after) = page.next {
            return vec![Need::Snapshot {
                origin: origin.to_string(),
                board: board.to_string(),
                instance: page.instance,
                after: Some(after),
                build: build_id,
            }];
        }
        let Some(mut build) = self.builds.remove(board) else {
            return Vec::new();
        };
        let Some(mut fresh) = build.fresh.take() else {
            return Vec::new();
        };
        for change in build.replay.drain(..) {
            match change {
                Change::RankUpdated { expiry, record, .. }
                    if record.generation.epoch >= fresh.instance.epoch =>
                {
                    fresh.upsert(expiry, &record);
                }
                Change::RankDeleted {
                    expiry,
                    owner,
                    generation,
                    ..
                } if generation.epoch >= fresh.instance.epoch => {
                    fresh.delete(expiry, owner, generation);
                }
                _ => {}
            }
        }
        fresh.serving = true;
        self.stale.remove(board);
        self.boards.insert(board.to_string(), fresh);
        Vec::new()
    }

    /// A snapshot could not be taken: the board stays stale until [`Replicas::reconcile`].
    pub fn snapshot_failed(&mut self, board: &str, build: u64) {
        if self.builds.get(board).is_some_and(|b| b.id == build) {
            self.builds.remove(board);
        }
    }

    /// What is missing now: origins in the view never heard from, stale boards without a
    /// build under way.
    pub fn reconcile(&mut self, members: &[String]) -> Vec<Need> {
        let mut needs: Vec<Need> = members
            .iter()
            .filter(|m| **m != self.me && !self.origins.contains_key(*m))
            .map(|m| Need::CatchUp {
                origin: m.clone(),
                incarnation: 0,
                since: 0,
            })
            .collect();
        let idle: Vec<(String, String, Instance)> = self
            .stale
            .iter()
            .filter(|(id, _)| !self.builds.contains_key(*id))
            .map(|(id, (origin, instance))| (id.clone(), origin.clone(), *instance))
            .collect();
        for (id, origin, instance) in idle {
            needs.push(self.start_build(&id, &origin, instance));
        }
        needs
    }

    /// Whether every member's stream was heard from and no board waits for a snapshot.
    pub fn synced(&self, members: &[String]) -> bool {
        self.stale.is_empty()
            && members
                .iter()
                .all(|m| *m == self.me || self.origins.contains_key(m))
    }

    /// Drops expired buckets everywhere.
    pub fn trim(&mut self, horizon: i64) {
        for b in self.boards.values_mut() {
            b.trim(horizon);
        }
    }
}
