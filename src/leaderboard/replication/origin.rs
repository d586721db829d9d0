//! The origin's side of [`Replicas`]: the owner's actor installs the board it loaded and
//! applies each committed batch here, which stamps the generations and yields the changes
//! for the log; snapshot pages and the board list are read from here too.

use super::replica::BoardReplica;
use super::state::{LocalChange, Replicas};
use super::wire::{Change, Generation, Instance, Page, RecordData, SnapshotCursor};

impl Replicas {
    /// The owner loaded `replica` (origin = this node): it replaces any older instance.
    pub fn install_local(&mut self, mut replica: BoardReplica) -> bool {
        let id = replica.id().to_string();
        if !self.replicated(&id) {
            return false;
        }
        if self
            .boards
            .get(&id)
            .is_some_and(|b| b.instance > replica.instance)
        {
            return false;
        }
        replica.serving = true;
        replica.origin = self.me.clone();
        self.builds.remove(&id);
        self.stale.remove(&id);
        self.boards.insert(id, replica);
        true
    }

    /// Applies the owner's committed changes to its own replica and returns them as log
    /// changes, each record with the next generation. Nothing when the replica is not this
    /// node's `instance` (not replicated, or taken over).
    pub fn commit_local(
        &mut self,
        board: &str,
        instance: Instance,
        changes: Vec<LocalChange>,
    ) -> Vec<Change> {
        let me = self.me.clone();
        let Some(b) = self.boards.get_mut(board) else {
            return Vec::new();
        };
        if b.origin != me || b.instance != instance {
            return Vec::new();
        }
        let order = b.board.order.nakama_number() as u8;
        let mut out = Vec::with_capacity(changes.len());
        for c in changes {
            let generation = Generation {
                epoch: instance.epoch,
                seq: b.next_seq,
            };
            b.next_seq += 1;
            match c.record {
                Some((rec, username)) => {
                    let record = RecordData {
                        owner: c.owner,
                        score: rec.score,
                        subscore: rec.subscore,
                        num_score: rec.num_score,
                        max_num_score: rec.max_num_score,
                        metadata: rec.metadata,
                        create_time: rec.create_time,
                        update_time: rec.update_time,
                        username,
                        generation,
                    };
                    b.upsert(c.expiry, &record);
                    out.push(Change::RankUpdated {
                        board: board.to_string(),
                        expiry: c.expiry,
                        order,
                        record,
                    });
                }
                None => {
                    b.delete(c.expiry, c.owner, generation);
                    out.push(Change::RankDeleted {
                        board: board.to_string(),
                        expiry: c.expiry,
                        owner: c.owner,
                        generation,
                    });
                }
            }
        }
        out
    }

    /// The board was deleted on this node (its owner): the change for the log, if the board
    /// was replicated.
    pub fn delete_local(&mut self, board: &str, instance: Instance) -> Option<Change> {
        if !self.replicated(board) {
            return None;
        }
        self.drop_board_upto(board, instance);
        Some(Change::BoardDeleted {
            board: board.to_string(),
            instance,
        })
    }

    /// This node's boards and their instances (for a replica's full resync).
    pub fn local_boards(&self) -> Vec<(String, Instance)> {
        let mut v: Vec<(String, Instance)> = self
            .boards
            .values()
            .filter(|b| b.origin == self.me && b.serving)
            .map(|b| (b.id().to_string(), b.instance))
            .collect();
        v.sort();
        v
    }

    /// A snapshot page of this node's board `instance` (log `version` and `incarnation` are
    /// the caller's, read under the same lock); `Err` when it does not hold that instance.
    pub fn local_page(
        &self,
        board: &str,
        instance: Instance,
        after: Option<SnapshotCursor>,
        max_records: usize,
        max_bytes: usize,
        (incarnation, version): (u64, u64),
    ) -> Result<Page, String> {
        let b = self
            .boards
            .get(board)
            .filter(|b| b.origin == self.me && b.instance == instance && b.serving)
            .ok_or_else(|| format!("{board} is not owned here under {instance:?}"))?;
        let (records, next) = b.page(after, max_records, max_bytes);
        Ok(Page {
            incarnation,
            version,
            def: b.def.clone(),
            instance,
            buckets: b.buckets.keys().copied().collect(),
            records,
            next,
        })
    }
}
