//! What the handlers answer, in Nakama's shapes: a [`RecordView`], a [`RecordList`] and a
//! [`BoardInfo`] as the wire types of [`crate::protocol::leaderboard`].

use crate::leaderboard::messages::{BoardInfo, RecordList, RecordView};
use crate::protocol::leaderboard::{
    int64, unix_timestamp, LeaderboardRecord, LeaderboardRecordList, Tournament,
};

/// `api.LeaderboardRecord`.
pub(super) fn record(r: &RecordView) -> LeaderboardRecord<'_> {
    LeaderboardRecord {
        leaderboard_id: &r.leaderboard_id,
        owner_id: r.owner_id.to_string(),
        username: r.username.as_deref(),
        score: int64(r.score),
        subscore: int64(r.subscore),
        num_score: r.num_score,
        metadata: &r.metadata,
        create_time: unix_timestamp(r.create_time),
        update_time: unix_timestamp(r.update_time),
        expiry_time: (r.expiry_time != 0).then(|| unix_timestamp(r.expiry_time)),
        rank: int64(r.rank as i64),
        max_num_score: r.max_num_score,
    }
}

/// `api.LeaderboardRecordList` / `api.TournamentRecordList`.
pub(super) fn record_list(l: &RecordList) -> LeaderboardRecordList<'_> {
    LeaderboardRecordList {
        records: l.records.iter().map(record).collect(),
        owner_records: l.owner_records.iter().map(record).collect(),
        next_cursor: l.next_cursor.as_deref(),
        prev_cursor: l.prev_cursor.as_deref(),
        rank_count: int64(l.rank_count as i64),
    }
}

fn unix_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// `api.Tournament`; whether it `can_enter` is decided at `now`.
pub(super) fn tournament(t: &BoardInfo, now: i64) -> Tournament<'_> {
    let can_enter = t.start_active <= now
        && t.end_active >= now
        && (t.max_size == 0 || t.size < u64::from(t.max_size));
    Tournament {
        id: &t.id,
        title: &t.title,
        description: &t.description,
        category: t.category,
        sort_order: t.sort_order,
        size: u32::try_from(t.size).unwrap_or(u32::MAX),
        max_size: t.max_size,
        max_num_score: t.max_num_score,
        can_enter,
        end_active: unix_u32(t.end_active),
        next_reset: unix_u32(t.expiry),
        metadata: &t.metadata,
        create_time: unix_timestamp(t.create_time),
        start_time: unix_timestamp(t.start_time),
        end_time: (t.end_time > 0).then(|| unix_timestamp(t.end_time)),
        duration: t.duration,
        start_active: unix_u32(t.start_active),
        prev_reset: unix_u32(t.prev_reset),
        operator: t.operator,
        authoritative: t.authoritative,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn record_json_leaves_zero_values_out() {
        let r = RecordView {
            leaderboard_id: "b".into(),
            owner_id: Uuid::nil(),
            username: Some("u".into()),
            score: 0,
            subscore: 12,
            num_score: 1,
            max_num_score: 1_000_000,
            metadata: "{}".into(),
            create_time: 1_700_000_000,
            update_time: 1_700_000_001,
            expiry_time: 0,
            rank: 3,
        };
        let v: Value = serde_json::to_value(record(&r)).unwrap();
        assert_eq!(v.get("score"), None);
        assert_eq!(v["subscore"], "12");
        assert_eq!(v["rank"], "3");
        assert_eq!(v["num_score"], 1);
        assert_eq!(v.get("expiry_time"), None);
        assert_eq!(v["create_time"], "2023-11-14T22:13:20Z");
        let list = RecordList::default();
        assert_eq!(serde_json::to_string(&record_list(&list)).unwrap(), "{}");
    }
}
