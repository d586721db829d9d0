//! The read messages (`List`, `AroundOwner`, `ReadPart`, `GetInfo`): answered from memory with
//! the reads every node's replica shares ([`reads`]), or, when those plan it, from the
//! database ([`super::database_reads`]). A `ReadPart` is a read cut to a peer frame's size.

use actix::prelude::*;

use super::database_reads::{around_database, list_database};
use super::{ready_answer, unix_now, Answer, Leaderboard};
use crate::leaderboard::messages::{
    Api, AroundOwner, BoardInfo, GetInfo, LeaderboardError, List, PartRead, ReadPart,
    ReadPartAnswer, RecordList,
};
use crate::leaderboard::parts;
use crate::leaderboard::rank_cache::SortOrder;
use crate::leaderboard::reads::{self, Plan};

impl Handler<List> for Leaderboard {
    type Result = Answer<RecordList>;

    fn handle(&mut self, msg: List, _: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        match reads::list(&board, &*self, &msg, unix_now()) {
            Plan::Done(answer) => {
                self.deps.counters.reads_memory.increment(1);
                ready_answer(answer)
            }
            Plan::Database { expiry, cursor } => {
                self.deps.counters.reads_database.increment(1);
                let db = self.deps.db.clone();
                Box::pin(list_database(
                    db,
                    board,
                    expiry,
                    msg.limit,
                    cursor,
                    msg.owner_ids,
                ))
            }
        }
    }
}

impl Handler<AroundOwner> for Leaderboard {
    type Result = Answer<RecordList>;

    fn handle(&mut self, msg: AroundOwner, _: &mut Context<Self>) -> Self::Result {
        let board = match self.ready(msg.api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        let db = self.deps.db.clone();
        match reads::around(&board, &*self, &msg, unix_now()) {
            Plan::Done(answer) => {
                self.deps.counters.reads_memory.increment(1);
                ready_answer(answer)
            }
            Plan::Database {
                expiry,
                cursor: Some(cursor),
            } => {
                self.deps.counters.reads_database.increment(1);
                let limit = Some(msg.limit);
                Box::pin(list_database(
                    db,
                    board,
                    expiry,
                    limit,
                    Some(cursor),
                    Vec::new(),
                ))
            }
            Plan::Database { expiry, .. } => {
                self.deps.counters.reads_database.increment(1);
                Box::pin(around_database(db, board, expiry, msg.owner, msg.limit))
            }
        }
    }
}

impl Handler<ReadPart> for Leaderboard {
    type Result = Answer<ReadPartAnswer>;

    fn handle(&mut self, msg: ReadPart, ctx: &mut Context<Self>) -> Self::Result {
        let api = match &msg.read {
            PartRead::List(l) => l.api,
            PartRead::Around(a) => a.api,
        };
        let board = match self.ready(api) {
            Ok(b) => b,
            Err(e) => return ready_answer(Err(e)),
        };
        let expiry = parts::bucket_of(&board, &msg.read, unix_now());
        let descending = board.order == SortOrder::Descending;
        let whole = match msg.read {
            PartRead::List(l) => <Self as Handler<List>>::handle(self, l, ctx),
            PartRead::Around(a) => <Self as Handler<AroundOwner>>::handle(self, a, ctx),
        };
        let max = msg.max_bytes;
        Box::pin(async move { Ok(parts::trim(whole.await?, expiry, max, descending)) })
    }
}

impl Handler<GetInfo> for Leaderboard {
    type Result = Result<BoardInfo, LeaderboardError>;

    fn handle(&mut self, _: GetInfo, _: &mut Context<Self>) -> Self::Result {
        let board = self.ready(Api::Leaderboard)?;
        Ok(reads::info(&board, &*self, unix_now()))
    }
}
