//! Pure coalescing of dirty rows: the latest version of a row wins, the oldest dirty row is
//! written first, and a failed batch goes back without overwriting anything newer.
//!
//! No actix, tokio or SQL here; the persistence actor carries out what this decides.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

/// The tables that take dirty (batched, non-critical) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Character,
    CharacterAttribute,
    BattleActionLog,
}

/// Identifies one row: coalescing is per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub table: Table,
    pub id: Uuid,
    /// Second part of a composite key (attribute code, turn number …), empty otherwise.
    pub sub: String,
}

/// Non-critical columns of `player_character`, written in batches.
#[derive(Debug, Clone, PartialEq)]
pub struct CharacterDirty {
    pub id: Uuid,
    pub epoch: i64,
    pub location: String,
    pub hp: i32,
    pub xp: i64,
    pub level: i32,
    pub skill_points: i32,
    pub travel: Option<serde_json::Value>,
}

/// One `character_attribute` value.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeDirty {
    pub character_id: Uuid,
    pub epoch: i64,
    pub code: String,
    pub value: i64,
}

/// One turn of a battle's compact action log (append-only; the key is battle + turn).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionLogRow {
    pub battle_id: Uuid,
    pub epoch: i64,
    pub turn: i32,
    pub payload: Vec<u8>,
}

/// A row some actor wants written eventually, fenced by the epoch it carries.
#[derive(Debug, Clone, PartialEq)]
pub enum DirtyRow {
    Character(CharacterDirty),
    Attribute(AttributeDirty),
    ActionLog(ActionLogRow),
}

impl DirtyRow {
    pub fn key(&self) -> RowKey {
        match self {
            DirtyRow::Character(c) => RowKey {
                table: Table::Character,
                id: c.id,
                sub: String::new(),
            },
            DirtyRow::Attribute(a) => RowKey {
                table: Table::CharacterAttribute,
                id: a.character_id,
                sub: a.code.clone(),
            },
            DirtyRow::ActionLog(l) => RowKey {
                table: Table::BattleActionLog,
                id: l.battle_id,
                sub: l.turn.to_string(),
            },
        }
    }

    pub fn table(&self) -> Table {
        self.key().table
    }
}

/// A queued row with its bookkeeping. `first_seq` is the sequence number of the oldest
/// unwritten change folded into this entry: a `flush_now` issued after that change must wait
/// for this entry even if a newer version replaced the row since.
#[derive(Debug)]
pub struct Entry<T> {
    pub row: DirtyRow,
    pub first_seq: u64,
    pub tag: T,
}

/// Latest-wins queue of dirty rows, ordered by age. `T` is whatever the caller wants returned
/// with a row (the persistence actor keeps the address to tell when a row was fenced).
#[derive(Debug)]
pub struct Coalescer<T> {
    rows: HashMap<RowKey, Entry<T>>,
    by_age: BTreeMap<u64, RowKey>,
    next_seq: u64,
}

impl<T> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer {
            rows: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 1,
        }
    }
}

impl<T> Coalescer<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The sequence number the next change will get; everything pushed so far is below it.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Sequence number of the oldest change not yet taken.
    pub fn oldest(&self) -> Option<u64> {
        self.by_age.keys().next().copied()
    }

    /// Queues a row, replacing any queued version of the same row. Returns its sequence number.
    pub fn push(&mut self, row: DirtyRow, tag: T) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = row.key();
        match self.rows.get_mut(&key) {
            Some(entry) => {
                entry.row = row;
                entry.tag = tag;
            }
            None => {
                self.by_age.insert(seq, key.clone());
                self.rows.insert(
                    key,
                    Entry {
                        row,
                        first_seq: seq,
                        tag,
                    },
                );
            }
        }
        seq
    }

    /// Removes up to `max` of the oldest entries.
    pub fn take(&mut self, max: usize) -> Vec<Entry<T>> {
        let mut out = Vec::with_capacity(max.min(self.rows.len()));
        while out.len() < max {
            let Some((_, key)) = self.by_age.pop_first() else {
                break;
            };
            if let Some(entry) = self.rows.remove(&key) {
                out.push(entry);
            }
        }
        out
    }

    /// Puts back entries whose write failed. Where a newer version of a row was queued
    /// meanwhile, the newer row stays but keeps the older entry's age.
    pub fn restore(&mut self, entries: Vec<Entry<T>>) {
        for entry in entries {
            let key = entry.row.key();
            match self.rows.get_mut(&key) {
                Some(newer) => {
                    if entry.first_seq < newer.first_seq {
                        self.by_age.remove(&newer.first_seq);
                        newer.first_seq = entry.first_seq;
                        self.by_age.insert(entry.first_seq, key);
                    }
                }
                None => {
                    self.by_age.insert(entry.first_seq, key.clone());
                    self.rows.insert(key, entry);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn character(id: Uuid, hp: i32) -> DirtyRow {
        DirtyRow::Character(CharacterDirty {
            id,
            epoch: 1,
            location: "a".into(),
            hp,
            xp: 0,
            level: 1,
            skill_points: 0,
            travel: None,
        })
    }

    fn hp(row: &DirtyRow) -> i32 {
        match row {
            DirtyRow::Character(c) => c.hp,
            _ => unreachable!(),
        }
    }

    #[test]
    fn many_updates_to_one_row_become_one() {
        let mut c = Coalescer::new();
        let id = Uuid::new_v4();
        for i in 0..1000 {
            c.push(character(id, i), ());
        }
        assert_eq!(c.len(), 1);
        let taken = c.take(10);
        assert_eq!(taken.len(), 1);
        assert_eq!(hp(&taken[0].row), 999);
        assert_eq!(taken[0].first_seq, 1);
    }

    #[test]
    fn oldest_first_and_restore_keeps_newer() {
        let mut c = Coalescer::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        c.push(character(a, 1), ());
        c.push(character(b, 1), ());
        let taken = c.take(1);
        assert_eq!(taken[0].row.key().id, a);
        c.push(character(a, 2), ()); // newer version while the first is in flight
        c.restore(taken);
        assert_eq!(c.len(), 2);
        assert_eq!(c.oldest(), Some(1), "the restored age is kept");
        let all = c.take(10);
        assert_eq!(all[0].row.key().id, a);
        assert_eq!(hp(&all[0].row), 2, "the newer row wins over the failed one");
    }

    proptest! {
        /// Whatever the interleaving of pushes, takes and restores, the queue holds exactly
        /// the latest version of every row not yet taken, and the age index matches it.
        #[test]
        fn latest_wins(ops in proptest::collection::vec((0u8..5, 0i32..100, 0u8..4), 1..200)) {
            let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
            let mut c = Coalescer::new();
            let mut model: HashMap<Uuid, i32> = HashMap::new();
            for (who, value, op) in ops {
                match op {
                    0 | 1 => { c.push(character(ids[who as usize], value), ()); model.insert(ids[who as usize], value); }
                    2 => {
                        let taken = c.take(2);
                        for e in &taken { model.remove(&e.row.key().id); }
                    }
                    _ => {
                        let taken = c.take(2);
                        for e in &taken {
                            model.entry(e.row.key().id).or_insert(hp(&e.row));
                        }
                        c.restore(taken);
                    }
                }
                prop_assert_eq!(c.len(), model.len());
                prop_assert_eq!(c.by_age.len(), c.rows.len());
            }
            let rest = c.take(usize::MAX);
            for e in rest {
                prop_assert_eq!(Some(&hp(&e.row)), model.get(&e.row.key().id));
            }
        }
    }
}
