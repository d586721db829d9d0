// Calls every game RPC of a running serai node through nakama-js, once with a good request and
// with typical bad ones, and prints each exchange as one JSON line:
//   {"rpc", "via": "http"|"socket", "request": <payload>, "answer": <payload>}
//   {"rpc", "via", "request", "error": {"status", "body"} | {"code", "message", "context"}}
// plus the raw frames and HTTP requests of one call each way ("wire" lines). docs/rpc.md's
// examples come from this output.
//
//   SERAI_CLIENT_ADDR=127.0.0.1:7350 node clients/js/rpc_examples.mjs > examples.jsonl
//
// Environment: SERAI_CLIENT_ADDR (default 127.0.0.1:7350), SERAI_SERVER_KEY (default
// "defaultkey"), SERAI_HTTP_KEY (default "defaulthttpkey").

import { randomBytes, randomUUID } from "node:crypto";
import { WebSocket } from "ws";

globalThis.WebSocket = WebSocket;

import { host, port, serverKey } from "./scenario.mjs";

const { Client, WebSocketAdapterText } = await import("@heroiclabs/nakama-js");

const httpKey = process.env.SERAI_HTTP_KEY || "defaulthttpkey";

setTimeout(() => {
  console.error("rpc_examples: no end within 60 s");
  process.exit(1);
}, 60_000);

function emit(line) {
  console.log(JSON.stringify(line));
}

// Raw HTTP, for the "wire" lines: wrap the global fetch nakama-js calls.
let captureHttp = false;
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, options = {}) => {
  const response = await realFetch(url, options);
  if (captureHttp) {
    const text = await response.clone().text();
    emit({
      wire: "http",
      method: options.method,
      url: String(url).replace(/^https?:\/\/[^/]+/, ""),
      body: options.body,
      status: response.status,
      answer: text,
    });
  }
  return response;
};

// Raw socket frames, for the "wire" lines.
let captureFrames = false;
class LoggingAdapter extends WebSocketAdapterText {
  send(msg) {
    super.send(msg);
    if (captureFrames) emit({ wire: "socket-out", frame: JSON.stringify(msg) });
  }
  set onMessage(value) {
    super.onMessage = value
      ? (message) => {
          if (captureFrames) emit({ wire: "socket-in", frame: JSON.stringify(message) });
          value(message);
        }
      : value;
  }
  get onMessage() {
    return super.onMessage;
  }
}

const client = new Client(serverKey, host, port, false, 7000, false);
const session = await client.authenticateDevice(`serai-doc-${randomUUID()}`, true, `doc${randomBytes(4).toString("hex")}`);
const socket = client.createSocket(false, false, new LoggingAdapter());
await socket.connect(session, true);

async function http(rpc, request, s = session) {
  try {
    const reply = await client.rpc(s, rpc, request);
    emit({ rpc, via: "http", request, answer: reply.payload });
    return reply.payload;
  } catch (e) {
    const body = typeof e.json === "function" ? await e.json() : String(e);
    emit({ rpc, via: "http", request, error: { status: e.status, body } });
    return undefined;
  }
}

async function sock(rpc, request) {
  try {
    const reply = await socket.rpc(rpc, request === undefined ? undefined : JSON.stringify(request));
    const answer = JSON.parse(reply.payload);
    emit({ rpc, via: "socket", request, answer });
    return answer;
  } catch (e) {
    emit({ rpc, via: "socket", request, error: e });
    return undefined;
  }
}

async function serverToServer(rpc, request) {
  try {
    const reply = await client.rpcHttpKey(httpKey, rpc, request);
    emit({ rpc, via: "http_key", request, answer: reply.payload });
  } catch (e) {
    const body = typeof e.json === "function" ? await e.json() : String(e);
    emit({ rpc, via: "http_key", request, error: { status: e.status, body } });
  }
}

const nobody = "00000000-0000-4000-8000-000000000000";

// echo, with the raw wire of one HTTP call and one socket call.
captureHttp = true;
await http("echo", { hello: "serai" });
captureHttp = false;
captureFrames = true;
await sock("echo", { hello: "serai" });
captureFrames = false;

await http("get_catalog", {});

// create_character
const ch = await sock("create_character", { name: "Mara Vell", faction: "merchant_league", background: "merchant_heir" });
await sock("create_character", { name: "Mara Vell", faction: "pirates", background: "merchant_heir" });
await sock("create_character", { name: "M", faction: "merchant_league", background: "merchant_heir" });
await sock("create_character", { name: "Mara", faction: "merchant_league" });
await http("create_character", { name: "Mara", faction: "merchant_league", background: "merchant_heir", level: 99 });
captureFrames = true;
await sock("create_character", undefined);
captureFrames = false;
await serverToServer("create_character", { name: "Mara", faction: "merchant_league", background: "merchant_heir" });
const id = ch.id;

// get_character, list_characters
await http("get_character", { character_id: id });
await http("get_character", { character_id: nobody });
await http("get_character", { character_id: "not-a-uuid" });
await http("list_characters", {});

// quotes and trades
captureHttp = true;
await http("get_trade_quotes", { character_id: id });
captureHttp = false;
await http("execute_trade", { character_id: id, good: "salt", side: "buy", quantity: 10, price_limit: 20 });
await http("execute_trade", { character_id: id, good: "salt", side: "sell", quantity: 4, price_limit: 1 });
await http("execute_trade", { character_id: id, good: "salt", side: "sell", quantity: 50 });
await http("execute_trade", { character_id: id, good: "salt", side: "buy", quantity: 5, price_limit: 1 });
await http("execute_trade", { character_id: id, good: "unobtainium", side: "buy", quantity: 1 });
await http("execute_trade", { character_id: id, good: "salt", side: "buy", quantity: -3 });
await http("execute_trade", { character_id: id, good: "gemstones", side: "buy", quantity: 50 });
await http("execute_trade", { character_id: id, good: "timber", side: "buy", quantity: 1000 });
await sock("execute_trade", { character_id: id, good: "salt", side: "sell", quantity: 50 });

// crew
const hired = await http("hire_crew", { character_id: id, archetype: "porter", name: "Old Bren" });
await http("hire_crew", { character_id: id, archetype: "dragon" });
await http("hire_crew", { character_id: id, archetype: "mercenary" });
await http("hire_crew", { character_id: id, archetype: "mercenary" });
await http("hire_crew", { character_id: id, archetype: "mercenary" });
const crewId = hired && hired.crew[0] && hired.crew[0].id;
await http("dismiss_crew", { character_id: id, crew_id: crewId });
await http("dismiss_crew", { character_id: id, crew_id: nobody });

// skills
await http("learn_skill", { character_id: id, skill: "haggling" });
await http("learn_skill", { character_id: id, skill: "haggling" });
await http("learn_skill", { character_id: id, skill: "trade_empire" });
await http("learn_skill", { character_id: id, skill: "juggling" });

// more refusals: quota, gold, crew size, cargo space after a dismissal, skill points
const rich = await sock("create_character", { name: "Quota Test", faction: "merchant_league", background: "merchant_heir" });
await http("execute_trade", { character_id: rich.id, good: "spices", side: "buy", quantity: 16 });
await http("execute_trade", { character_id: rich.id, good: "furs", side: "buy", quantity: 7 });
for (let n = 0; n < 8; n += 1) {
  await http("hire_crew", { character_id: rich.id, archetype: "porter" });
}
const full = await http("hire_crew", { character_id: rich.id, archetype: "porter" });
await http("execute_trade", { character_id: rich.id, good: "salt", side: "buy", quantity: 150 });
const porters = await http("get_character", { character_id: rich.id });
if (porters) {
  await http("dismiss_crew", { character_id: rich.id, crew_id: porters.crew[0].id });
}
await http("learn_skill", { character_id: rich.id, skill: "appraisal" });
await http("learn_skill", { character_id: rich.id, skill: "haggling" });
await http("learn_skill", { character_id: rich.id, skill: "caravan_logistics" });
for (let n = 0; n < 8; n += 1) {
  await http("create_character", { name: `Alt ${"abcdefgh"[n]}`, faction: "sand_nomads", background: "sellsword" });
}

// someone else's character
const other = await client.authenticateDevice(`serai-doc-${randomUUID()}`, true);
await http("get_character", { character_id: id }, other);
await http("execute_trade", { character_id: id, good: "salt", side: "sell", quantity: 1 }, other);

// server to server
await serverToServer("get_character", { character_id: id });
await serverToServer("list_characters", {});

// delete
await http("delete_character", { character_id: id });
await http("delete_character", { character_id: id });
await sock("no_such_rpc", {});
await http("no_such_rpc", {});

socket.disconnect(false);
process.exit(0);
