// The realtime socket in protobuf, driven by the official Nakama JavaScript client with its
// protobuf adapter (@heroiclabs/nakama-js-protobuf, pinned in package.json) against a running
// serai node: `/ws?format=protobuf`, binary frames both ways.
//
//   device auth -> connect with WebSocketAdapterPb -> echo and create_character (game RPC)
//   -> a notification pushed by the server -> ping/pong -> errors for bad RPCs (unknown id,
//   refused input with its context) -> the socket still answers -> disconnect.
//
// Every step asserts what it gets back; any failure exits non-zero with the reason. On
// success the last line printed is `PROTOBUF_SOCKET OK checks=<n>`. tests/protobuf_socket.rs
// runs it, and registers the RPC `pb_notify_me` (it pushes a notification to its caller with
// subject `pb_check`, code 4242 and the call's payload as content).
//
// Environment:
//   SERAI_CLIENT_ADDR  host:port of the node's client listener (default 127.0.0.1:7350)
//   SERAI_SERVER_KEY   the server key (default "defaultkey")
//
// nakama-js is written for browsers: the adapter expects a global `WebSocket`, which comes from
// the `ws` package here (it supports binaryType "arraybuffer", which the adapter sets).

import { randomBytes, randomUUID } from "node:crypto";
import { WebSocket } from "ws";

globalThis.WebSocket = WebSocket;

import { describe, host, port, scenario, serverKey } from "./scenario.mjs";

const { check, equal, step, fail, run } = scenario("PROTOBUF_SOCKET", 30);

const { Client } = await import("@heroiclabs/nakama-js");
const { WebSocketAdapterPb } = await import("@heroiclabs/nakama-js-protobuf");







/** A socket call rejected by nakama-js: it rejects with the envelope's `error` object. */
async function expectSocketError(promise, code, what) {
  let error;
  try {
    const value = await promise;
    throw new Error(`${what}: expected socket error ${code}, got ${describe(value)}`);
  } catch (e) {
    error = e;
  }
  check(error && typeof error.code === "number", `${what}: a socket error object`, error);
  equal(error.code, code, `${what}: socket error code`);
  check(typeof error.message === "string" && error.message.length > 0, `${what}: message`, error);
  console.log(`   ${what}: socket error ${describe(error)}`);
  return error;
}

async function main() {
  console.log(`nakama-js protobuf socket against ${host}:${port} (node ${process.version})`);
  const client = new Client(serverKey, host, port, false, 7000, false);

  step("authenticateDevice (create)");
  const session = await client.authenticateDevice(`serai-pb-${randomUUID()}`, true);
  check(session.created, "the device auth created the account");

  step("connect with the protobuf adapter");
  const adapter = new WebSocketAdapterPb();
  const socket = client.createSocket(false, false, adapter);
  const closed = new Promise((resolve) => {
    socket.ondisconnect = (evt) => resolve(evt);
  });
  const notifications = [];
  let notified = () => {};
  socket.onnotification = (n) => {
    notifications.push(n);
    notified();
  };
  equal(await socket.connect(session, true), session, "socket.connect resolves with the session");
  check(adapter.isOpen(), "the socket is open");
  check(adapter._socket.url.includes("format=protobuf"), "the adapter asked for protobuf", adapter._socket.url);

  step("rpc: echo and a game RPC");
  const text = { hello: "protobuf", unicode: "日本語 ✓", n: 42 };
  const echoed = await socket.rpc("echo", JSON.stringify(text));
  equal(echoed.id, "echo", "echo reply id");
  equal(JSON.parse(echoed.payload), text, "echo payload survives the binary round trip");
  const catalog = (await client.rpc(session, "get_catalog", {})).payload;
  const faction = catalog.factions[0];
  const background = catalog.backgrounds[0];
  const name = `Pb ${randomBytes(3).toString("hex")}`;
  const created = await socket.rpc(
    "create_character",
    JSON.stringify({ name, faction: faction.code, background: background.code }),
  );
  equal(created.id, "create_character", "create_character reply id");
  const character = JSON.parse(created.payload);
  equal(character.name, name, "the character is created over the protobuf socket");
  equal(character.location, faction.home_node, "the new character is at its faction's home");

  step("a notification pushed by the server");
  const arrived = new Promise((resolve) => {
    notified = resolve;
  });
  const tag = randomUUID();
  const before = Date.now();
  const reply = await socket.rpc("pb_notify_me", JSON.stringify({ tag }));
  equal(reply.id, "pb_notify_me", "pb_notify_me reply id");
  if (notifications.length === 0) await arrived;
  equal(notifications.length, 1, "one notification");
  const n = notifications[0];
  equal(n.subject, "pb_check", "notification subject");
  equal(n.code, 4242, "notification code");
  equal(n.content, { tag }, "notification content (JSON, parsed by nakama-js)");
  check(typeof n.id === "string" && n.id.length === 36, "notification id", n.id);
  check(n.create_time instanceof Date, "create_time is a Timestamp (a Date here)", n.create_time);
  check(Math.abs(n.create_time.getTime() - before) < 60_000, "create_time is now", n.create_time);
  equal(n.persistent, false, "not persistent");

  step("ping");
  const pong = await socket.send({ ping: {} });
  check(pong && pong.pong !== undefined, "a ping is answered with a pong", pong);
  check(typeof pong.cid === "string" && pong.cid.length > 0, "the pong carries the ping's cid", pong);

  step("errors for bad RPCs");
  await expectSocketError(socket.rpc("no_such_rpc", "{}"), 6, "unknown RPC id");
  await expectSocketError(socket.rpc("", "{}"), 3, "empty RPC id");
  const refused = await expectSocketError(
    socket.rpc("create_character", JSON.stringify({ name: "", faction: "nope", background: "nope" })),
    3,
    "create_character with bad input",
  );
  equal(refused.context && refused.context.grpc_code, "3", "the error's context map carries the gRPC code");

  step("the socket still answers after the errors");
  const again = await socket.rpc("echo", JSON.stringify({ after: "errors" }));
  equal(JSON.parse(again.payload), { after: "errors" }, "echo after the errors");

  step("disconnect");
  socket.disconnect(true);
  await closed;
  check(!adapter.isOpen(), "the socket is closed");
}

run(main);
