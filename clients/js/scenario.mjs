// What every client scenario script shares: where the node is (`SERAI_CLIENT_ADDR`,
// `SERAI_SERVER_KEY`), counted checks, a watchdog so the Rust test driving it never waits
// forever, and the last line that test reads: `<NAME> OK checks=<n>` (exit 0), or
// `<NAME> FAILED: <why>` on standard error (exit 1).

export const addr = process.env.SERAI_CLIENT_ADDR || "127.0.0.1:7350";
export const serverKey = process.env.SERAI_SERVER_KEY || "defaultkey";

/** `host:port` (IPv6 hosts in brackets) → [host, port]. */
export function splitAddr(a) {
  const i = a.lastIndexOf(":");
  if (i <= 0) throw new Error(`SERAI_CLIENT_ADDR must be host:port, got ${a}`);
  return [a.slice(0, i).replace(/^\[|\]$/g, ""), a.slice(i + 1)];
}

export const [host, port] = splitAddr(addr);

/** JSON where possible (detail in messages), else the value as text. */
export function describe(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function reason(err) {
  // nakama-js rejects an HTTP error with the fetch Response: name the call and status.
  if (err && typeof err.status === "number" && err.url) return `HTTP ${err.status} from ${err.url}`;
  if (err && err.stack) return err.stack;
  // A socket that could not open rejects with the WebSocket error event: its message says why.
  if (err && err.message) return err.message;
  return describe(err);
}

/** The frame of scenario `name`, which must finish within `seconds`. */
export function scenario(name, seconds = 40) {
  let checks = 0;
  const started = Date.now();
  const watchdog = setTimeout(
    () => fail(new Error(`${name} did not finish within ${seconds} s`)),
    seconds * 1000,
  );

  function check(condition, what, detail) {
    if (!condition) {
      const extra = detail === undefined ? "" : `: ${describe(detail)}`;
      throw new Error(`check failed: ${what}${extra}`);
    }
    checks += 1;
  }

  function equal(actual, expected, what) {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    check(a === e, `${what} (expected ${e}, got ${a})`);
  }

  function step(label) {
    console.log(`-- ${label}`);
    console.log(`   (at ${Date.now() - started} ms)`);
  }

  function fail(err) {
    clearTimeout(watchdog);
    console.error(`${name} FAILED: ${reason(err)}`);
    process.exit(1);
  }

  /** Runs `main`, then prints the OK line and exits (nakama-js leaves timers behind). */
  async function run(main) {
    try {
      await main();
    } catch (err) {
      fail(err);
    }
    clearTimeout(watchdog);
    console.log(`${name} OK checks=${checks}`);
    process.exit(0);
  }

  return { check, equal, step, fail, run };
}
