// Accounts as a game uses them, driven by the official Nakama JavaScript client
// (@heroiclabs/nakama-js, pinned in package.json) against a running serai node:
//
//   profile: updateAccount -> getAccount carries it -> getUsers by ids and usernames ->
//            a taken username is refused (409) -> bad fields are refused (400)
//   email:   authenticateEmail (create) -> again (created false) -> wrong password (401) ->
//            unknown email with create=false (404) -> username + password login
//   links:   linkCustom, linkEmail, linkDevice -> getAccount lists them -> an id of another
//            account is refused (409) -> unlinks down to the last way in, which is refused (403)
//   session: sessionRefresh rotates the refresh token (the old one is refused) ->
//            sessionLogout -> the token and refresh token are refused (401)
//
// Every step asserts what it gets back; any failure exits non-zero with the reason. On
// success the last line printed is `ACCOUNTS OK checks=<n>`. tests/accounts_nakama_js.rs runs
// it. Environment: SERAI_CLIENT_ADDR (default 127.0.0.1:7350), SERAI_SERVER_KEY (default
// "defaultkey").

import { randomUUID } from "node:crypto";

import { host, port, scenario, serverKey } from "./scenario.mjs";

const { check, equal, step, fail, run } = scenario("ACCOUNTS", 40);

const { Client, Session } = await import("@heroiclabs/nakama-js");






/** An HTTP call rejected by nakama-js: it rejects with the fetch `Response`. */
async function expectHttpError(promise, status, grpcCode, what, message) {
  let response;
  try {
    const value = await promise;
    throw new Error(`${what}: expected HTTP ${status}, but it succeeded with ${JSON.stringify(value)}`);
  } catch (e) {
    response = e;
  }
  if (!(response && typeof response.status === "number" && typeof response.json === "function")) {
    throw new Error(`${what}: expected a rejected Response, got ${response && response.stack ? response.stack : JSON.stringify(response)}`);
  }
  const body = await response.json();
  equal(response.status, status, `${what}: HTTP status`);
  equal(body.code, grpcCode, `${what}: gRPC code`);
  if (message !== undefined) equal(body.message, message, `${what}: message`);
  console.log(`   ${what}: HTTP ${response.status} ${JSON.stringify(body)}`);
}

async function main() {
  const client = new Client(serverKey, host, port, false, 7000, false);
  const tag = randomUUID().replace(/-/g, "").slice(0, 12);

  step("profile: updateAccount, getAccount, getUsers");
  const alice = await client.authenticateDevice(`device-alice-${tag}`, true, `alice${tag}`);
  const bob = await client.authenticateDevice(`device-bob-${tag}`, true, `bob${tag}`);
  equal(
    await client.updateAccount(alice, {
      display_name: "Alice A.",
      avatar_url: "https://example.com/a.png",
      lang_tag: "fr",
      location: "Lyon",
      timezone: "Europe/Paris",
    }),
    true,
    "updateAccount answers"
  );
  let account = await client.getAccount(alice);
  equal(account.user.username, `alice${tag}`, "username unchanged");
  equal(account.user.display_name, "Alice A.", "display_name");
  equal(account.user.avatar_url, "https://example.com/a.png", "avatar_url");
  equal(account.user.lang_tag, "fr", "lang_tag");
  equal(account.user.location, "Lyon", "location");
  equal(account.user.timezone, "Europe/Paris", "timezone");
  await client.updateAccount(alice, { username: `alicia${tag}`, location: "" });
  account = await client.getAccount(alice);
  equal(account.user.username, `alicia${tag}`, "username changed");
  equal(account.user.location, undefined, "an empty string clears a field");
  equal(account.user.display_name, "Alice A.", "fields left out stay");

  const users = await client.getUsers(bob, [alice.user_id], [`bob${tag}`, "nobody-by-that-name"]);
  equal(users.users.length, 2, "getUsers finds both");
  const found = Object.fromEntries(users.users.map((u) => [u.id, u]));
  equal(found[alice.user_id].display_name, "Alice A.", "getUsers by id: display_name");
  equal(found[alice.user_id].username, `alicia${tag}`, "getUsers by id: username");
  equal(found[bob.user_id].username, `bob${tag}`, "getUsers by username");
  equal((await client.getUsers(bob, [], [])).users, [], "getUsers of nothing");
  await expectHttpError(client.getUsers(bob, ["not-a-uuid"]), 400, 3, "getUsers with a bad id",
    "ID 'not-a-uuid' is not a valid system ID.");
  await expectHttpError(client.updateAccount(bob, { username: `alicia${tag}` }), 409, 6,
    "a taken username", "Username is already in use.");
  await expectHttpError(client.updateAccount(bob, { lang_tag: "x".repeat(19) }), 400, 3,
    "a language tag over 18 characters");
  await expectHttpError(client.updateAccount(bob, {}), 400, 3, "nothing to update",
    "No fields to update.");

  step("email: authenticateEmail");
  const email = `Carol.${tag}@Example.com`;
  const carol = await client.authenticateEmail(email, "password-one", true, `carol${tag}`);
  equal(carol.created, true, "created by email");
  const again = await client.authenticateEmail(email.toLowerCase(), "password-one", false);
  equal(again.created, false, "existing email: created false");
  equal(again.user_id, carol.user_id, "same account, email case-insensitive");
  await expectHttpError(client.authenticateEmail(email, "password-two", true), 401, 16,
    "wrong password", "Invalid credentials.");
  await expectHttpError(client.authenticateEmail(`nobody.${tag}@example.com`, "password-one", false),
    404, 5, "unknown email, create=false", "User account not found.");
  await expectHttpError(client.authenticateEmail(email, "short", true), 400, 3, "short password",
    "Password must be at least 8 characters long.");
  await expectHttpError(client.authenticateEmail("not-an-email", "password-one", true), 400, 3,
    "bad email", "Invalid email address format.");
  const byName = await client.authenticateEmail("", "password-one", false, `carol${tag}`);
  equal(byName.user_id, carol.user_id, "username + password login");
  account = await client.getAccount(carol);
  equal(account.email, email.toLowerCase(), "getAccount shows the email, lower-cased");

  step("links: link and unlink device, custom, email");
  equal(await client.linkCustom(carol, { id: `custom-${tag}` }), true, "linkCustom");
  equal(await client.linkDevice(carol, { id: `device-carol-${tag}` }), true, "linkDevice");
  equal(await client.linkDevice(carol, { id: `device-carol-${tag}` }), true, "linking again is fine");
  account = await client.getAccount(carol);
  equal(account.custom_id, `custom-${tag}`, "custom id linked");
  equal(account.devices.map((d) => d.id), [`device-carol-${tag}`], "device linked");
  const viaDevice = await client.authenticateDevice(`device-carol-${tag}`, false);
  equal(viaDevice.user_id, carol.user_id, "the linked device signs in to the account");
  await expectHttpError(client.linkDevice(bob, { id: `device-carol-${tag}` }), 409, 6,
    "a device of another account", "Device ID already in use.");
  await expectHttpError(client.linkCustom(bob, { id: `custom-${tag}` }), 409, 6,
    "a custom id of another account", "Custom ID is already in use.");
  await expectHttpError(client.linkEmail(bob, { email, password: "password-bob" }), 409, 6,
    "an email of another account", "Email is already in use.");
  equal(await client.linkEmail(bob, { email: `bob.${tag}@example.com`, password: "password-bob" }),
    true, "linkEmail");
  const bobByEmail = await client.authenticateEmail(`bob.${tag}@example.com`, "password-bob", false);
  equal(bobByEmail.user_id, bob.user_id, "the linked email signs in to the account");

  equal(await client.unlinkEmail(carol, { email, password: "password-one" }), true, "unlinkEmail");
  equal(await client.unlinkCustom(carol, { id: `custom-${tag}` }), true, "unlinkCustom");
  await expectHttpError(client.unlinkDevice(carol, { id: `device-carol-${tag}` }), 403, 7,
    "the last way in", "Cannot unlink last account identifier. Check profile exists and is not last link.");
  await expectHttpError(client.authenticateEmail(email, "password-one", false), 404, 5,
    "an unlinked email signs in no more");
  account = await client.getAccount(viaDevice);
  equal(account.devices.length, 1, "the last device stays");

  step("session: refresh rotation and logout");
  const session = await client.authenticateDevice(`device-dave-${tag}`, true);
  const firstRefresh = session.refresh_token;
  const copy = Session.restore(session.token, session.refresh_token);
  await client.sessionRefresh(session);
  check(session.refresh_token !== firstRefresh, "a refresh rotates the refresh token");
  await expectHttpError(client.sessionRefresh(copy), 401, 16, "the used refresh token",
    "Refresh token invalid or expired.");
  equal((await client.getAccount(session)).user.id, session.user_id, "the refreshed token works");
  equal(await client.sessionLogout(session, session.token, session.refresh_token), true, "sessionLogout");
  await expectHttpError(client.getAccount(session), 401, 16, "the logged-out token");
  await expectHttpError(client.sessionRefresh(session), 401, 16, "the logged-out refresh token");
}

run(main);
