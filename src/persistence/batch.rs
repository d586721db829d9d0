//! Pure coalescing of dirty rows: the latest version of a row wins, the oldest dirty row is
//! written first, and a failed batch goes back without overwriting anything newer. Rows are
//! also indexed by entity, so one entity's rows can be taken (and written) on their own.
//!
//! No actix, tokio or SQL here; the persistence actor carries out what this decides. Time is
//! passed in (`now`), never read here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tables that take dirty (batched, non-critical) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Character,
    CharacterAttribute,
    BattleActionLog,
}

impl Table {
    /// The SQL table the rows go to (also how compensation records name it).
    pub fn name(self) -> &'static str {
        match self {
            Table::Character => "player_character",
            Table::CharacterAttribute => "character_attribute",
            Table::BattleActionLog => "battle_action_log",
        }
    }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDirty {
    pub character_id: Uuid,
    pub epoch: i64,
    pub code: String,
    pub value: i64,
}

/// One turn of a battle's compact action log (append-only; the key is battle + turn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionLogRow {
    pub battle_id: Uuid,
    pub epoch: i64,
    pub turn: i32,
    pub payload: Vec<u8>,
}

/// A row some actor wants written eventually, fenced by the epoch it carries. Serialized (as
/// JSON) only when a row that cannot be written is set aside for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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

    /// The entity whose actor writes this row (character, battle): what a per-entity flush
    /// selects by. It is the key's id for every table.
    pub fn entity(&self) -> Uuid {
        self.key().id
    }
}

/// A queued row with its bookkeeping. `first_seq` is the sequence number of the oldest
/// unwritten change folded into this entry: a `flush_now` issued after that change must wait
/// for this entry even if a newer version replaced the row since.
#[derive(Debug)]
pub struct Entry<T> {
    pub row: DirtyRow,
    pub first_seq: u64,
    /// When the change numbered `first_seq` was queued: the age of the oldest unwritten
    /// change, which is what a crash would lose.
    pub since: Instant,
    /// How many times writing this row failed for a reason of the row itself (constraint,
    /// bad data); past a bound the row is set aside rather than retried forever.
    pub attempts: u32,
    /// After such a failure the row is not taken again before this.
    pub not_before: Option<Instant>,
    pub tag: T,
}

impl<T> Entry<T> {
    /// An entry for a row that is not in any queue (a set-aside row written again).
    pub fn new(row: DirtyRow, first_seq: u64, since: Instant, tag: T) -> Self {
        Entry {
            row,
            first_seq,
            since,
            attempts: 0,
            not_before: None,
            tag,
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| t <= now)
    }
}

/// Latest-wins queue of dirty rows, ordered by age. `T` is whatever the caller wants returned
/// with a row (the persistence actor keeps the address to tell when a row was fenced).
#[derive(Debug)]
pub struct Coalescer<T> {
    rows: HashMap<RowKey, Entry<T>>,
    by_age: BTreeMap<u64, RowKey>,
    /// Queued keys per entity, so an entity's rows are found without scanning the queue.
    by_entity: HashMap<Uuid, HashSet<RowKey>>,
    next_seq: u64,
}

impl<T> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer {
            rows: HashMap::new(),
            by_age: BTreeMap::new(),
            by_entity: HashMap::new(),
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

    /// Takes a sequence number for a change that does not go through [`Coalescer::push`].
    pub fn allocate_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Sequence number of the oldest change not yet taken.
    pub fn oldest(&self) -> Option<u64> {
        self.by_age.keys().next().copied()
    }

    /// When the oldest change not yet taken was queued.
    pub fn oldest_since(&self) -> Option<Instant> {
        let (_, key) = self.by_age.iter().next()?;
        self.rows.get(key).map(|e| e.since)
    }

    /// Sequence number of the oldest queued change of one entity.
    pub fn oldest_of(&self, entity: Uuid) -> Option<u64> {
        self.by_entity
            .get(&entity)?
            .iter()
            .filter_map(|k| self.rows.get(k))
            .map(|e| e.first_seq)
            .min()
    }

    pub fn contains(&self, key: &RowKey) -> bool {
        self.rows.contains_key(key)
    }

    /// Queues a row, replacing any queued version of the same row. Returns its sequence number.
    pub fn push(&mut self, row: DirtyRow, tag: T) -> u64 {
        self.push_at(row, tag, Instant::now())
    }

    /// [`Coalescer::push`] with the time of the change given.
    pub fn push_at(&mut self, row: DirtyRow, tag: T, now: Instant) -> u64 {
        let seq = self.allocate_seq();
        let key = row.key();
        match self.rows.get_mut(&key) {
            Some(entry) => {
                entry.row = row;
                entry.tag = tag;
            }
            None => self.insert(key, Entry::new(row, seq, now, tag)),
        }
        seq
    }

    fn insert(&mut self, key: RowKey, entry: Entry<T>) {
        self.by_age.insert(entry.first_seq, key.clone());
        self.by_entity
            .entry(key.id)
            .or_default()
            .insert(key.clone());
        self.rows.insert(key, entry);
    }

    fn remove(&mut self, key: &RowKey) -> Option<Entry<T>> {
        let entry = self.rows.remove(key)?;
        self.by_age.remove(&entry.first_seq);
        if let Some(keys) = self.by_entity.get_mut(&key.id) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_entity.remove(&key.id);
            }
        }
        Some(entry)
    }

    /// Removes up to `max` of the oldest entries.
    pub fn take(&mut self, max: usize) -> Vec<Entry<T>> {
        let keys: Vec<RowKey> = self.by_age.values().take(max).cloned().collect();
        keys.iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Removes up to `max` of the oldest entries that are due at `now` and not `busy` (a key
    /// being written by another flush must wait for it: two writes of one row in flight at
    /// once could commit in the wrong order).
    pub fn take_due(
        &mut self,
        max: usize,
        now: Instant,
        busy: impl Fn(&RowKey) -> bool,
    ) -> Vec<Entry<T>> {
        let picked: Vec<RowKey> = self
            .by_age
            .values()
            .filter(|k| !busy(k) && self.rows.get(*k).is_some_and(|e| e.due(now)))
            .take(max)
            .cloned()
            .collect();
        picked.iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Removes every due, not-`busy` entry of one entity, oldest first.
    pub fn take_entity(
        &mut self,
        entity: Uuid,
        now: Instant,
        busy: impl Fn(&RowKey) -> bool,
    ) -> Vec<Entry<T>> {
        let Some(keys) = self.by_entity.get(&entity) else {
            return Vec::new();
        };
        let picked: Vec<RowKey> = keys
            .iter()
            .filter(|k| !busy(k) && self.rows.get(*k).is_some_and(|e| e.due(now)))
            .cloned()
            .collect();
        let mut out: Vec<Entry<T>> = picked.iter().filter_map(|k| self.remove(k)).collect();
        out.sort_by_key(|e| e.first_seq);
        out
    }

    /// Puts back entries whose write failed. Where a newer version of a row was queued
    /// meanwhile, the newer row stays but keeps the older entry's age, its failure count and
    /// its retry time (they belong to the row, whichever version is written next).
    pub fn restore(&mut self, entries: Vec<Entry<T>>) {
        for entry in entries {
            let key = entry.row.key();
            match self.rows.get_mut(&key) {
                Some(newer) => {
                    newer.attempts = newer.attempts.max(entry.attempts);
                    newer.not_before = newer.not_before.max(entry.not_before);
                    if entry.first_seq < newer.first_seq {
                        self.by_age.remove(&newer.first_seq);
                        newer.first_seq = entry.first_seq;
                        newer.since = entry.since;
                        self.by_age.insert(entry.first_seq, key);
                    }
                }
                None => self.insert(key, entry),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

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

    fn attribute(id: Uuid, code: &str) -> DirtyRow {
        DirtyRow::Attribute(AttributeDirty {
            character_id: id,
            epoch: 1,
            code: code.into(),
            value: 1,
        })
    }

    #[test]
    fn one_entity_is_taken_alone_and_busy_keys_wait() {
        let mut c = Coalescer::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for i in 0..100 {
            c.push(character(Uuid::new_v4(), i), ());
        }
        c.push(character(a, 1), ());
        c.push(attribute(a, "str"), ());
        c.push(attribute(a, "dex"), ());
        c.push(character(b, 1), ());
        assert_eq!(c.oldest_of(a), Some(101));
        let busy = attribute(a, "dex").key();
        let taken = c.take_entity(a, Instant::now(), |k| *k == busy);
        let keys: Vec<RowKey> = taken.iter().map(|e| e.row.key()).collect();
        assert_eq!(keys, vec![character(a, 0).key(), attribute(a, "str").key()]);
        assert_eq!(c.len(), 102, "nobody else's rows were taken");
        assert_eq!(c.oldest_of(a), Some(103), "the busy row is still queued");
        assert_eq!(c.oldest_of(b), Some(104));
        assert_eq!(c.oldest_of(Uuid::new_v4()), None);
    }

    #[test]
    fn a_failed_row_waits_for_its_retry_time_and_keeps_its_count() {
        let mut c = Coalescer::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        c.push_at(character(a, 1), (), t0);
        c.push_at(character(b, 1), (), t0 + Duration::from_millis(5));
        let mut failed = c.take(1);
        failed[0].attempts = 2;
        failed[0].not_before = Some(t0 + Duration::from_secs(1));
        c.push_at(character(a, 2), (), t0 + Duration::from_millis(10));
        c.restore(failed);
        assert_eq!(
            c.oldest_since(),
            Some(t0),
            "the failed change is still the oldest"
        );
        let now = t0 + Duration::from_millis(20);
        let due = c.take_due(10, now, |_| false);
        assert_eq!(due.len(), 1);
        assert_eq!(
            due[0].row.key().id,
            b,
            "the row waiting for its retry is skipped"
        );
        let later = c.take_due(10, t0 + Duration::from_secs(1), |_| false);
        assert_eq!(later.len(), 1);
        assert_eq!((hp(&later[0].row), later[0].attempts), (2, 2));
    }

    #[test]
    fn rows_round_trip_through_json() {
        let rows = [
            character(Uuid::new_v4(), 3),
            attribute(Uuid::new_v4(), "str"),
            DirtyRow::ActionLog(ActionLogRow {
                battle_id: Uuid::new_v4(),
                epoch: 2,
                turn: 4,
                payload: vec![0, 1, 255],
            }),
        ];
        for row in rows {
            let text = serde_json::to_string(&row).unwrap();
            assert_eq!(
                serde_json::from_str::<DirtyRow>(&text).unwrap(),
                row,
                "{text}"
            );
        }
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
                        let taken = if value % 2 == 0 {
                            c.take(2)
                        } else {
                            c.take_entity(ids[who as usize], Instant::now(), |_| false)
                        };
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
                let indexed: usize = c.by_entity.values().map(|keys| keys.len()).sum();
                prop_assert_eq!(indexed, c.rows.len(), "the entity index matches the queue");
            }
            let rest = c.take(usize::MAX);
            for e in rest {
                prop_assert_eq!(Some(&hp(&e.row)), model.get(&e.row.key().id));
            }
        }
    }
}
