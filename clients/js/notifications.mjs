// Stored notifications, driven by the official Nakama JavaScript client against a serai node
// whose trips take a fraction of a second (tests/notifications.rs starts it that way):
//
//   device auth -> create_character, travel (HTTP only: no socket, the player is offline)
//   -> the caravan arrives -> log in again -> listNotifications finds `travel_arrived`
//   (persistent, content parsed) -> its cacheable cursor lists nothing new -> connect a
//   socket, travel back: the live push is persistent and is the one listed after the cursor
//   -> Nakama's refusals (limit, cursor) -> deleteNotifications -> nothing listed.
//
// Every step asserts what it gets back; on success the last line is
// `NOTIFICATIONS OK checks=<n>`.
//
// Environment: SERAI_CLIENT_ADDR (host:port), SERAI_SERVER_KEY.

import { randomUUID } from "node:crypto";
import { WebSocket } from "ws";

globalThis.WebSocket = WebSocket;

import { host, port, scenario, serverKey } from "./scenario.mjs";

const { check, equal, step, fail, run } = scenario("NOTIFICATIONS", 40);

const { Client, WebSocketAdapterText } = await import("@heroiclabs/nakama-js");






/** nakama-js rejects a non-2xx answer with the fetch Response. */
async function rejection(promise, status, code, what) {
  let response;
  try {
    response = await promise;
  } catch (e) {
    response = e;
    const body = await e.json();
    equal([e.status, body.code], [status, code], what);
    return body;
  }
  throw new Error(`${what}: expected HTTP ${status}, got ${JSON.stringify(response)}`);
}

async function rpc(client, session, id, input) {
  return (await client.rpc(session, id, input)).payload;
}

/** Polls get_character over HTTP until the caravan stands at `node` (at most `ms`). */
async function arrivedAt(client, session, id, node, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const c = await rpc(client, session, "get_character", { character_id: id });
    if (c.location === node && !c.travel) return c;
    if (Date.now() > deadline) throw new Error(`no arrival at ${node} within ${ms} ms: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const client = new Client(serverKey, host, port, false, 7000, false);
  const device = `serai-notify-${randomUUID()}`;

  step("offline: create a character and travel, with no socket open");
  const session = await client.authenticateDevice(device, true);
  const catalog = await rpc(client, session, "get_catalog", {});
  const faction = catalog.factions[0];
  const background = catalog.backgrounds[0];
  const created = await rpc(client, session, "create_character", {
    name: "Notified",
    faction: faction.code,
    background: background.code,
  });
  const home = created.location;
  const route = catalog.routes.find((r) => r.from === home || r.to === home);
  check(route, "a route from home", home);
  const away = route.from === home ? route.to : route.from;
  await rpc(client, session, "travel", { character_id: created.id, to_node: away });
  await arrivedAt(client, session, created.id, away, 10_000);

  step("log in again: the arrival is listed");
  const again = await client.authenticateDevice(device, false);
  equal(again.user_id, session.user_id, "same account");
  const listed = await client.listNotifications(again, 10);
  equal(listed.notifications.length, 1, "one stored notification");
  const arrived = listed.notifications[0];
  equal([arrived.subject, arrived.code, arrived.persistent], ["travel_arrived", 101, true], "arrival");
  equal([arrived.content.character_id, arrived.content.node, arrived.content.from], [created.id, away, home], "arrival content");
  check(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(arrived.create_time), "create_time in seconds", arrived.create_time);
  check(!arrived.sender_id, "a system notification has no sender", arrived);
  check(typeof listed.cacheable_cursor === "string" && listed.cacheable_cursor.length > 0, "cacheable cursor");

  step("the cacheable cursor lists only what is new");
  const none = await client.listNotifications(again, 10, listed.cacheable_cursor);
  equal(none.notifications, [], "nothing new");
  equal(none.cacheable_cursor, listed.cacheable_cursor, "the same cursor comes back");

  step("online: the live push is persistent and is the stored one");
  const socket = client.createSocket(false, false, new WebSocketAdapterText());
  const pushed = new Promise((resolve) => {
    socket.onnotification = (n) => {
      if (n.subject === "travel_arrived") resolve(n);
    };
  });
  await socket.connect(again, true);
  await rpc(client, again, "travel", { character_id: created.id, to_node: home });
  const live = await pushed;
  equal([live.persistent, live.code, live.content.node], [true, 101, home], "live arrival");
  const fresh = await client.listNotifications(again, 10, listed.cacheable_cursor);
  equal(fresh.notifications.map((n) => n.id), [live.id], "listed after the cursor: the pushed one");
  socket.disconnect(false);

  step("Nakama's refusals");
  await rejection(client.listNotifications(again, 0), 400, 3, "limit 0");
  await rejection(client.listNotifications(again, 101), 400, 3, "limit 101");
  await rejection(client.listNotifications(again, 1, "not-a-cursor!"), 400, 3, "malformed cursor");
  const first = await client.listNotifications(again);
  equal(first.notifications.map((n) => n.id), [arrived.id], "default limit 1, oldest first");

  step("deleteNotifications");
  check(await client.deleteNotifications(again, [arrived.id, live.id]), "deleted");
  const after = await client.listNotifications(again, 100);
  equal(after.notifications, [], "nothing left");
  check(after.cacheable_cursor, "a cursor even when empty", after);

}

run(main);
