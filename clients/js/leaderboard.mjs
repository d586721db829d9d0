// Leaderboards and tournaments driven by the official Nakama JavaScript client
// (@heroiclabs/nakama-js, pinned in package.json) against a running serai node:
//
//   three players authenticate -> writeLeaderboardRecord (metadata, best operator) ->
//   listLeaderboardRecords (top, owner ids, a cursor page each way) ->
//   listLeaderboardRecordsAroundOwner -> refused writes reject with Nakama's codes ->
//   deleteLeaderboardRecord (api client) -> joinTournament, writeTournamentRecord,
//   listTournamentRecords, listTournamentRecordsAroundOwner, listTournaments.
//
// Every step asserts what it gets back; any failure exits non-zero with the reason. On
// success the last line printed is `LEADERBOARD OK checks=<n>`.
// tests/leaderboard_nakama_js.rs creates the boards with the admin API and runs it.
//
// Environment:
//   SERAI_CLIENT_ADDR     host:port of the node's client listener (default 127.0.0.1:7350)
//   SERAI_SERVER_KEY      the server key (default "defaultkey")
//   SERAI_LEADERBOARD     a descending "best" leaderboard, empty (default "js_board")
//   SERAI_AUTHORITATIVE   an authoritative leaderboard (default "js_authoritative")
//   SERAI_TOURNAMENT      a running tournament with join_required (default "js_cup")

import { randomUUID } from "node:crypto";

import { host, port, scenario, serverKey } from "./scenario.mjs";

const { check, equal, step, fail, run } = scenario("LEADERBOARD", 40);

const { Client } = await import("@heroiclabs/nakama-js");

const board = process.env.SERAI_LEADERBOARD || "js_board";
const authoritative = process.env.SERAI_AUTHORITATIVE || "js_authoritative";
const cup = process.env.SERAI_TOURNAMENT || "js_cup";





// nakama-js rejects with the raw fetch Response on a non-2xx answer.
async function rejection(promise, status, code, what) {
  try {
    await promise;
  } catch (response) {
    check(response && response.status === status, `${what}: HTTP ${status}`, response && response.status);
    const body = await response.json();
    equal(body.code, code, `${what}: code`);
    return body;
  }
  throw new Error(`${what}: expected a rejection`);
}

async function main() {
  const client = new Client(serverKey, host, port, false, 10_000, false);

  step("authenticateDevice x3");
  const names = ["jsalpha", "jsbravo", "jscharlie"];
  const sessions = [];
  for (const name of names) {
    const s = await client.authenticateDevice(`serai-js-lb-${randomUUID()}`, true, `${name}${randomUUID().slice(0, 8)}`);
    check(s.user_id && s.token, "session", s);
    sessions.push(s);
  }
  const [a, b, c] = sessions;

  step("writeLeaderboardRecord");
  let r = await client.writeLeaderboardRecord(a, board, { score: "100", subscore: "5", metadata: { ship: "cog" } });
  equal(r.leaderboard_id, board, "record board");
  equal(r.owner_id, a.user_id, "record owner");
  equal(r.username, a.username, "record username");
  equal([r.score, r.subscore, r.num_score, r.rank], [100, 5, 1, 1], "first record");
  equal(r.metadata, { ship: "cog" }, "metadata comes back parsed");
  // (nakama-js passes update_time through, not create_time.)
  check(typeof r.update_time === "string" && r.update_time.endsWith("Z"), "update_time", r.update_time);
  check(r.expiry_time === undefined, "no expiry on a board without resets", r.expiry_time);
  // best: a lower score keeps 100, a better subscore counts.
  r = await client.writeLeaderboardRecord(a, board, { score: "90", subscore: "7" });
  equal([r.score, r.subscore, r.num_score], [100, 7, 2], "best keeps score and subscore independently");
  equal(r.metadata, { ship: "cog" }, "metadata kept");
  r = await client.writeLeaderboardRecord(b, board, { score: "200" });
  equal([r.score, r.rank], [200, 1], "bravo leads");
  r = await client.writeLeaderboardRecord(c, board, { score: "100", subscore: "7" });
  check(r.rank === 2 || r.rank === 3, "a full tie ranks by owner id", r.rank);

  step("listLeaderboardRecords");
  let list = await client.listLeaderboardRecords(a, board, undefined, 10);
  equal(list.records.map((x) => x.rank), [1, 2, 3], "ranks");
  equal(list.records[0].owner_id, b.user_id, "top");
  equal(list.rank_count, 3, "rank_count");
  // Full tie (100/7): the higher owner id first on a descending board.
  const tied = [a.user_id, c.user_id].sort().reverse();
  equal(list.records.slice(1).map((x) => x.owner_id), tied, "ties by owner id");
  list = await client.listLeaderboardRecords(c, board, [a.user_id, c.user_id]);
  equal(list.records.length, 0, "owner ids only: no page");
  equal(list.owner_records.map((x) => x.owner_id), tied, "owner records in board order");
  equal(list.owner_records.map((x) => x.rank), [2, 3], "owner ranks");

  step("a cursor page each way");
  const first = await client.listLeaderboardRecords(a, board, undefined, 1);
  check(first.next_cursor, "next cursor", first);
  const second = await client.listLeaderboardRecords(a, board, undefined, 1, first.next_cursor);
  equal(second.records[0].rank, 2, "second page rank");
  equal(second.records[0].owner_id, tied[0], "second page owner");
  check(second.prev_cursor, "prev cursor", second);
  const back = await client.listLeaderboardRecords(a, board, undefined, 1, second.prev_cursor);
  equal(back.records[0].owner_id, b.user_id, "back to the top");

  step("listLeaderboardRecordsAroundOwner");
  const around = await client.listLeaderboardRecordsAroundOwner(c, board, c.user_id, 3);
  equal(around.records.length, 3, "window size");
  check(around.records.some((x) => x.owner_id === c.user_id), "the owner is in its window", around);
  equal(around.records.map((x) => x.rank), [1, 2, 3], "window ranks");

  step("refused writes");
  await rejection(client.writeLeaderboardRecord(a, authoritative, { score: "1" }), 403, 7, "authoritative");
  await rejection(client.writeLeaderboardRecord(a, `missing-${randomUUID()}`, { score: "1" }), 404, 5, "unknown board");
  await rejection(client.listLeaderboardRecords(a, board, undefined, 1001), 400, 3, "limit");

  step("deleteLeaderboardRecord");
  await client.apiClient.deleteLeaderboardRecord(c.token, board);
  list = await client.listLeaderboardRecords(a, board, undefined, 10);
  equal(list.records.length, 2, "deleted");

  step("tournament: join, write, list");
  await rejection(client.writeTournamentRecord(a, cup, { score: "10" }), 400, 9, "write before join");
  check(await client.joinTournament(a, cup), "joinTournament");
  check(await client.joinTournament(b, cup), "joinTournament again");
  r = await client.writeTournamentRecord(a, cup, { score: "10", metadata: { lap: 1 } });
  equal([r.score, r.num_score, r.rank], [10, 1, 1], "tournament record");
  const tlist = await client.listTournamentRecords(b, cup, undefined, 10);
  equal(tlist.records.length, 2, "joined players are listed");
  equal(tlist.records[0].owner_id, a.user_id, "top of the tournament");
  const taround = await client.listTournamentRecordsAroundOwner(b, cup, b.user_id, 2);
  check(taround.records.some((x) => x.owner_id === b.user_id), "tournament around owner", taround);
  const tournaments = await client.listTournaments(a);
  const t = tournaments.tournaments.find((x) => x.id === cup);
  check(t, "listTournaments has the cup", tournaments);
  equal([t.size, t.can_enter], [2, true], "tournament size and can_enter");
  check(t.end_active > Date.now() / 1000, "end_active in the future", t);

}

run(main);
