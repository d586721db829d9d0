// The trade flow of a game client, driven by the official Nakama JavaScript client
// (@heroiclabs/nakama-js, pinned in package.json) against a running serai node:
//
//   device auth (create) -> socket connect -> create_character (socket) -> get_trade_quotes
//   (HTTP) -> buy, sell (socket and HTTP) -> refused trades change nothing -> disconnect ->
//   re-authenticate (same device: created false) -> reconnect -> state intact -> delete.
//
// Every step asserts what it gets back; any failure exits non-zero with the reason. On
// success the last line printed is `TRADE_FLOW OK checks=<n>`. tests/nakama_js.rs runs it.
//
// Environment:
//   SERAI_CLIENT_ADDR  host:port of the node's client listener (default 127.0.0.1:7350)
//   SERAI_SERVER_KEY   the server key (default "defaultkey")
//   SERAI_DEVICE_ID    device id to authenticate with (default: a fresh random one)
//   SERAI_PAUSE_FOR_RESTART=1  after the disconnect, print `PAUSED` and wait for a line
//                      `RESUME <host:port>` on stdin: the caller restarts the node meanwhile
//                      (on the same database), so the reconnect finds the state in the
//                      database, not in the old node's memory
//
// nakama-js is written for browsers: it expects a global `WebSocket` (browser API:
// onopen/onmessage/onclose/onerror, WebSocket.OPEN) and a global `fetch`. Node 18+ has
// `fetch`; the WebSocket comes from the `ws` package.

import { randomBytes, randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { WebSocket } from "ws";

globalThis.WebSocket = WebSocket;

import { describe, host, port, scenario, serverKey, splitAddr } from "./scenario.mjs";

const { check, equal, step, fail, run } = scenario("TRADE_FLOW", 40);

const { Client, WebSocketAdapterText } = await import("@heroiclabs/nakama-js");

const deviceId = process.env.SERAI_DEVICE_ID || `serai-js-${randomUUID()}`;







// nakama-js warns (console.warn) when the server's token lifetimes are too short for its
// refresh logic; serai's defaults must never trigger that.
const warnings = [];
const originalWarn = console.warn;
console.warn = (...args) => {
  warnings.push(args.join(" "));
  originalWarn(...args);
};

/** An HTTP call rejected by nakama-js: it rejects with the fetch `Response`. */
async function expectHttpError(promise, status, grpcCode, what) {
  let response;
  try {
    const value = await promise;
    throw new Error(`${what}: expected HTTP ${status}, but it succeeded with ${describe(value)}`);
  } catch (e) {
    response = e;
  }
  if (!(response && typeof response.status === "number" && typeof response.json === "function")) {
    throw new Error(`${what}: expected a rejected Response, got ${describe(response)}`);
  }
  const body = await response.json();
  equal(response.status, status, `${what}: HTTP status`);
  equal(body.code, grpcCode, `${what}: gRPC code in the body`);
  check(typeof body.message === "string" && body.message.length > 0, `${what}: message`, body);
  console.log(`   ${what}: HTTP ${response.status} ${describe(body)}`);
  return body;
}

/** A socket call rejected by nakama-js: it rejects with the envelope's `error` object. */
async function expectSocketError(promise, code, what) {
  let error;
  try {
    const value = await promise;
    throw new Error(`${what}: expected socket error ${code}, but it succeeded with ${describe(value)}`);
  } catch (e) {
    error = e;
  }
  if (!(error && typeof error.code === "number")) {
    throw new Error(`${what}: expected a socket error object, got ${describe(error)}`);
  }
  equal(error.code, code, `${what}: socket error code`);
  check(typeof error.message === "string" && error.message.length > 0, `${what}: message`, error);
  console.log(`   ${what}: socket error ${describe(error)}`);
  return error;
}

/** Calls a game RPC over the socket; the answer payload is a JSON string. */
async function socketRpc(socket, id, input) {
  const reply = await socket.rpc(id, JSON.stringify(input));
  equal(reply.id, id, `socket rpc ${id}: reply id`);
  check(typeof reply.payload === "string", `socket rpc ${id}: payload is a string`, reply);
  return JSON.parse(reply.payload);
}

/** Calls a game RPC over HTTP; nakama-js parses the answer payload. */
async function httpRpc(client, session, id, input) {
  const reply = await client.rpc(session, id, input);
  check(reply.payload && typeof reply.payload === "object", `http rpc ${id}: payload is JSON`, reply);
  return reply.payload;
}

function cargoOf(lines, good) {
  const line = (lines || []).find((l) => l.good === good);
  return line ? line.quantity : 0;
}

/** The next line on stdin. */
function readLine() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.once("line", (line) => {
      resolve(line);
      rl.close();
    });
    rl.once("close", () => reject(new Error("stdin closed before a line arrived")));
  });
}

async function connectSocket(client, session) {
  const socket = client.createSocket(false, false, new WebSocketAdapterText());
  const closed = new Promise((resolve) => {
    socket.ondisconnect = (evt) => resolve(evt);
  });
  const connected = await socket.connect(session, true);
  check(connected === session, "socket.connect resolves with the session");
  check(socket.adapter.isOpen(), "the socket is open after connect");
  return { socket, closed };
}

async function main() {
  console.log(`nakama-js trade flow against ${host}:${port} (node ${process.version})`);
  let client = new Client(serverKey, host, port, false, 7000, false);
  const username = `js${randomBytes(6).toString("hex")}`;

  step("authenticate: wrong server key and unknown account are refused");
  const badKey = new Client(`${serverKey}x`, host, port, false, 7000, false);
  await expectHttpError(badKey.authenticateDevice(deviceId, true), 401, 16, "wrong server key");
  await expectHttpError(client.authenticateDevice(deviceId, false), 404, 5, "create=false, unknown device");

  step("authenticateDevice (create)");
  const session = await client.authenticateDevice(deviceId, true, username);
  const now = Date.now() / 1000;
  equal(session.created, true, "first device auth creates the account");
  check(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(session.user_id), "user_id is a UUID", session.user_id);
  equal(session.username, username, "session username");
  check(typeof session.token === "string" && session.token.split(".").length === 3, "token is a JWT");
  check(typeof session.refresh_token === "string" && session.refresh_token.split(".").length === 3, "refresh token is a JWT");
  check(!session.isexpired(now), "token not expired", session.expires_at);
  check(session.expires_at - now >= 70, "token lives at least 70 s", session.expires_at);
  check(!session.isrefreshexpired(now + 3700), "refresh token lives at least 3700 s", session.refresh_expires_at);
  console.log(`   user ${session.user_id} (${session.username}), token expires in ${Math.round(session.expires_at - now)} s`);

  step("session refresh keeps the user and does not warn");
  const refreshed = await client.sessionRefresh(session);
  equal(refreshed.user_id, session.user_id, "refreshed user_id");
  equal(refreshed.username, username, "refreshed username");
  check(!refreshed.isexpired(Date.now() / 1000), "refreshed token not expired");
  equal(warnings, [], "nakama-js printed no warnings");

  step("get_catalog over HTTP");
  const catalog = await httpRpc(client, session, "get_catalog", {});
  check(Array.isArray(catalog.factions) && catalog.factions.length > 0, "catalog has factions");
  check(Array.isArray(catalog.backgrounds) && catalog.backgrounds.length > 0, "catalog has backgrounds");
  check(Array.isArray(catalog.goods) && catalog.goods.length > 0, "catalog has goods");
  check(Array.isArray(catalog.nodes) && catalog.nodes.length > 0, "catalog has nodes");
  check(Array.isArray(catalog.routes) && catalog.routes.length > 0, "catalog has routes");
  const faction = catalog.factions[0];
  const background = [...catalog.backgrounds].sort((a, b) => b.starting_gold - a.starting_gold)[0];
  check(catalog.nodes.some((n) => n.code === faction.home_node), "the faction's home node is a catalog node", faction);
  const goodsByCode = new Map(catalog.goods.map((g) => [g.code, g]));

  step("socket connect");
  const first = await connectSocket(client, session);
  const socket = first.socket;
  const echoed = await socket.rpc("echo", JSON.stringify({ hello: "serai" }));
  equal(JSON.parse(echoed.payload), { hello: "serai" }, "echo over the socket");

  step("create_character over the socket");
  const name = `Trader ${randomBytes(3).toString("hex")}`;
  const created = await socketRpc(socket, "create_character", {
    name,
    faction: faction.code,
    background: background.code,
  });
  check(typeof created.id === "string" && created.id.length === 36, "character id", created.id);
  equal(created.name, name, "character name");
  equal(created.faction, faction.code, "character faction");
  equal(created.background, background.code, "character background");
  equal(created.gold, background.starting_gold, "starting gold is the background's");
  equal(created.location, faction.home_node, "a new character starts at the faction's home node");
  equal(created.cargo, [], "a new character carries no cargo");
  check(Array.isArray(created.crew) && Array.isArray(created.skills), "crew and skills are lists", created);
  check(created.attributes && typeof created.attributes === "object", "attributes", created);
  const characterId = created.id;
  console.log(`   character ${characterId} at ${created.location} with ${created.gold} gold`);

  step("list_characters over HTTP");
  const listed = await httpRpc(client, session, "list_characters", {});
  check(listed.characters.some((c) => c.id === characterId && c.name === name), "the new character is listed", listed);

  step("get_trade_quotes over HTTP");
  const quotes = await httpRpc(client, session, "get_trade_quotes", { character_id: characterId });
  equal(quotes.node, created.location, "quotes are for the caravan's node");
  check(Array.isArray(quotes.quotes) && quotes.quotes.length > 0, "there are quotes", quotes);
  for (const q of quotes.quotes) {
    check(goodsByCode.has(q.good), `quoted good ${q.good} is in the catalog`);
    check(Number.isInteger(q.buy_price) && q.buy_price > 0, `buy price of ${q.good}`, q);
    check(Number.isInteger(q.sell_price) && q.sell_price > 0, `sell price of ${q.good}`, q);
    check(q.sell_price < q.buy_price, `sell price below buy price for ${q.good}`, q);
    check(Number.isInteger(q.quota) && q.quota >= 0, `quota of ${q.good}`, q);
  }
  const room = created.capacity - created.cargo_weight;
  // The cheapest good with stock: 6 units (fits the starting purse and the wagons).
  const buyQty = 6;
  const pick = quotes.quotes
    .filter((q) => q.quota >= buyQty * 2)
    .filter((q) => goodsByCode.get(q.good).weight * buyQty <= room)
    .sort((a, b) => a.buy_price - b.buy_price)[0];
  check(pick !== undefined, "some good can be bought", quotes);
  check(pick.buy_price * buyQty * 2 <= created.gold, "the purse covers the order", { pick, gold: created.gold });
  const good = pick.good;
  console.log(`   buying ${buyQty} ${good} (buy ${pick.buy_price}, sell ${pick.sell_price}, quota ${pick.quota})`);

  step("a buy above price_limit is refused and changes nothing");
  await expectSocketError(
    socketRpc(socket, "execute_trade", {
      character_id: characterId,
      good,
      side: "buy",
      quantity: buyQty,
      price_limit: pick.buy_price - 1,
    }),
    3,
    "buy with price_limit below the price",
  );

  step("execute_trade buy over the socket");
  const goldBefore = created.gold;
  const bought = await socketRpc(socket, "execute_trade", {
    character_id: characterId,
    good,
    side: "buy",
    quantity: buyQty,
    price_limit: pick.buy_price * 2,
  });
  check(bought.unit_price >= pick.buy_price, "a buy pays at least the quoted buy price", bought);
  check(bought.unit_price <= pick.buy_price * 2, "a buy respects price_limit", bought);
  equal(bought.total, bought.unit_price * buyQty, "buy total = unit_price x quantity");
  equal(bought.gold, goldBefore - bought.total, "gold after buy = before - total");
  equal(cargoOf(bought.cargo, good), buyQty, "cargo holds the quantity bought");
  console.log(`   bought ${buyQty} ${good} at ${bought.unit_price}: total ${bought.total}, gold ${goldBefore} -> ${bought.gold}`);

  step("quotes moved with the buy");
  const after = await socketRpc(socket, "get_trade_quotes", { character_id: characterId });
  const pickAfter = after.quotes.find((q) => q.good === good);
  equal(pickAfter.quota, pick.quota - buyQty, "the market's quota went down by the quantity");
  check(pickAfter.buy_price >= pick.buy_price, "buying did not lower the buy price", pickAfter);

  step("selling more than held is refused (socket and HTTP) and changes nothing");
  const oversell = { character_id: characterId, good, side: "sell", quantity: buyQty + 1 };
  const sockErr = await expectSocketError(socketRpc(socket, "execute_trade", oversell), 3, "sell more than held (socket)");
  equal(sockErr.context && sockErr.context.grpc_code, "9", "socket error carries gRPC code 9");
  await expectHttpError(httpRpc(client, session, "execute_trade", oversell), 400, 9, "sell more than held (HTTP)");
  await expectHttpError(
    httpRpc(client, session, "execute_trade", { character_id: characterId, good, side: "sell", quantity: 0 }),
    400,
    3,
    "sell zero units (HTTP)",
  );
  await expectHttpError(
    httpRpc(client, session, "execute_trade", { character_id: characterId, good, side: "steal", quantity: 1 }),
    400,
    3,
    "unknown side (HTTP)",
  );
  await expectSocketError(socket.rpc("no_such_rpc", "{}"), 6, "unknown RPC id (socket)");
  await expectHttpError(client.rpc(session, "no_such_rpc", {}), 404, 5, "unknown RPC id (HTTP)");
  const unchanged = await httpRpc(client, session, "get_character", { character_id: characterId });
  equal(unchanged.gold, bought.gold, "gold unchanged by refused trades");
  equal(cargoOf(unchanged.cargo, good), buyQty, "cargo unchanged by refused trades");

  step("execute_trade sell over HTTP");
  const sellQty = 2;
  const sold = await httpRpc(client, session, "execute_trade", {
    character_id: characterId,
    good,
    side: "sell",
    quantity: sellQty,
    price_limit: 1,
  });
  check(sold.unit_price >= 1 && sold.unit_price < bought.unit_price, "a sell pays less than the buy cost", sold);
  equal(sold.total, sold.unit_price * sellQty, "sell total = unit_price x quantity");
  equal(sold.gold, bought.gold + sold.total, "gold after sell = before + total");
  equal(cargoOf(sold.cargo, good), buyQty - sellQty, "cargo after sell");
  console.log(`   sold ${sellQty} ${good} at ${sold.unit_price}: total ${sold.total}, gold ${bought.gold} -> ${sold.gold}`);
  const expectGold = sold.gold;
  const expectCargo = buyQty - sellQty;

  step("someone else's character is refused");
  const other = await client.authenticateDevice(`serai-js-${randomUUID()}`, true);
  equal(other.created, true, "a second account");
  await expectHttpError(
    httpRpc(client, other, "get_character", { character_id: characterId }),
    403,
    7,
    "another account reads the character",
  );
  await expectHttpError(
    httpRpc(client, other, "execute_trade", { character_id: characterId, good, side: "sell", quantity: 1 }),
    403,
    7,
    "another account sells its cargo",
  );

  step("disconnect");
  socket.disconnect(true);
  await first.closed;
  check(!socket.adapter.isOpen(), "the socket is closed after disconnect");
  let sendAfterClose;
  try {
    await socket.rpc("get_character", JSON.stringify({ character_id: characterId }));
    sendAfterClose = "succeeded";
  } catch (e) {
    sendAfterClose = String(e);
  }
  check(/not been established/.test(sendAfterClose), "a closed socket refuses to send", sendAfterClose);

  if (process.env.SERAI_PAUSE_FOR_RESTART === "1") {
    step("paused while the node restarts");
    console.log("PAUSED");
    const line = (await readLine()).trim();
    const resume = /^RESUME (\S+)$/.exec(line);
    check(resume !== null, "the caller answers RESUME <host:port>", line);
    const [newHost, newPort] = splitAddr(resume[1]);
    client = new Client(serverKey, newHost, newPort, false, 7000, false);
    console.log(`   resumed against ${newHost}:${newPort}`);
  }

  step("re-authenticate with the same device id");
  const again = await client.authenticateDevice(deviceId, true);
  equal(again.created, false, "the account exists: created is false");
  equal(again.user_id, session.user_id, "same user id");
  equal(again.username, username, "same username");

  step("reconnect the socket; the state is intact");
  const second = await connectSocket(client, again);
  const reloaded = await socketRpc(second.socket, "get_character", { character_id: characterId });
  equal(reloaded.id, characterId, "same character");
  equal(reloaded.gold, expectGold, "gold intact after reconnect");
  equal(cargoOf(reloaded.cargo, good), expectCargo, "cargo intact after reconnect");
  equal(reloaded.location, created.location, "location intact after reconnect");
  const relisted = await httpRpc(client, again, "list_characters", {});
  check(relisted.characters.some((c) => c.id === characterId), "still listed", relisted);
  console.log(`   ${reloaded.name}: ${reloaded.gold} gold, ${cargoOf(reloaded.cargo, good)} ${good}`);

  step("delete_character; then it is gone");
  const deleted = await socketRpc(second.socket, "delete_character", { character_id: characterId });
  equal(deleted, { deleted: true }, "delete answer");
  await expectHttpError(
    httpRpc(client, again, "get_character", { character_id: characterId }),
    404,
    5,
    "get a deleted character",
  );
  second.socket.disconnect(true);
  await second.closed;

  equal(warnings, [], "nakama-js printed no warnings");
}

run(main);
