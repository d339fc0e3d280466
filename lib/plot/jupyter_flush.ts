/**
 * `flushDisplays()`: returns once every output this kernel has displayed so far has been published on
 * IOPub, so that a cell ending right after a display does not lose it.
 *
 * Why: Deno's Jupyter kernel (the JS kernel of Deno 2.9) queues `Deno.jupyter.display`/`broadcast` messages
 * from the cell's thread into a channel that the protocol thread drains concurrently with the cell's
 * execution; `await display(...)` resolves once the message is queued, and the kernel sends execute_reply
 * and the `idle` status as soon as the cell's code returns, whether or not the queue is drained.
 * Frontends stop collecting a cell's outputs at `idle` (nbclient, hence nbconvert and our notebook runner,
 * drops what comes later with no error), so the last outputs of a cell could be lost: reproduced with a
 * cell showing a figure then a table on a loaded machine (the table went missing), and every time with a
 * cell displaying a few dozen large outputs (12 to 16 of 41 arrived).
 *
 * How: the kernel's IOPub socket publishes to every subscriber in the order they connected. This module
 * subscribes to it too (ZMTP 3.0, NULL mechanism, over the loopback address in the kernel's connection
 * file, found through /proc/self/cmdline's `--conn`), after the frontend; a flush broadcasts a `status:
 * busy` message tagged in its metadata (frontends ignore a busy status during execution) behind the queued
 * outputs, and waits until it comes back. The queue is first in, first out, and every subscriber connected
 * earlier has been written to before a later one, so everything displayed before the flush has reached the
 * frontend. Where that is not possible (no connection file, no permission, another kernel) it does nothing.
 */

type Jupyter = {
  broadcast(type: string, content: unknown, extra?: { metadata?: unknown }): Promise<void> | void;
};

const ENC = new TextEncoder();
const DEC = new TextDecoder();
/** The longest a flush waits for its marker (a safety net: it normally returns within milliseconds). */
const FLUSH_LIMIT_MS = 120_000;
/** Connecting: how often the first marker is re-sent until the subscription is live, and how many times. */
const CONNECT_RETRY_MS = 50;
const CONNECT_TRIES = 200;

interface Subscriber {
  /** Resolves when a message whose metadata carries `token` arrives. */
  waitFor(token: string, limitMs: number): Promise<boolean>;
}

let subscriber: Promise<Subscriber | undefined> | undefined;

/** Waits until every output displayed so far has left the kernel (see the module comment). */
export async function flushDisplays(jupyter: Jupyter): Promise<void> {
  subscriber ??= connect(jupyter).catch(() => undefined);
  const sub = await subscriber;
  if (!sub) return;
  const token = crypto.randomUUID();
  await mark(jupyter, token);
  await sub.waitFor(token, FLUSH_LIMIT_MS);
}

function mark(jupyter: Jupyter, token: string) {
  return jupyter.broadcast("status", { execution_state: "busy" }, { metadata: { mambabyte_flush: token } });
}

/** The kernel's IOPub port and address, from the connection file named on its command line. */
async function iopubAddress(): Promise<{ hostname: string; port: number } | undefined> {
  const args = (await Deno.readTextFile("/proc/self/cmdline")).split("\0");
  const at = args.indexOf("--conn");
  if (at < 0 || !args[at + 1]) return undefined;
  const info = JSON.parse(await Deno.readTextFile(args[at + 1]));
  if (info.transport !== "tcp" || !Number.isInteger(info.iopub_port)) return undefined;
  return { hostname: info.ip, port: info.iopub_port };
}

async function readExact(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  for (let at = 0; at < n;) {
    const got = await conn.read(buf.subarray(at));
    if (got === null) throw new Error("IOPub connection closed");
    at += got;
  }
  return buf;
}

/** One ZMTP frame: flags, then a 1-byte or 8-byte length. */
async function readFrame(conn: Deno.Conn): Promise<{ data: Uint8Array; more: boolean; command: boolean }> {
  const [flags] = await readExact(conn, 1);
  const size = flags & 0x02
    ? Number(new DataView((await readExact(conn, 8)).buffer).getBigUint64(0))
    : (await readExact(conn, 1))[0];
  return { data: await readExact(conn, size), more: (flags & 0x01) !== 0, command: (flags & 0x04) !== 0 };
}

function shortFrame(body: Uint8Array, command: boolean): Uint8Array {
  return Uint8Array.of(command ? 0x04 : 0x00, body.length, ...body);
}

async function connect(jupyter: Jupyter): Promise<Subscriber | undefined> {
  const address = await iopubAddress();
  if (!address) return undefined;
  const conn = await Deno.connect(address);
  conn.unref?.();
  // greeting: signature, version 3.0, mechanism NULL, as-server 0
  const greeting = new Uint8Array(64);
  greeting[0] = 0xff;
  greeting[9] = 0x7f;
  greeting[10] = 3;
  greeting.set(ENC.encode("NULL"), 12);
  await conn.write(greeting);
  await readExact(conn, 64);
  const ready = [
    5,
    ...ENC.encode("READY"),
    11,
    ...ENC.encode("Socket-Type"),
    0,
    0,
    0,
    3,
    ...ENC.encode("SUB"),
  ];
  await conn.write(shortFrame(Uint8Array.from(ready), true));
  await readFrame(conn); // the publisher's READY
  await conn.write(shortFrame(Uint8Array.of(0x01), false)); // subscribe to everything

  // read every message for as long as the kernel lives (an unread subscriber would stall the publisher)
  const seen = new Set<string>();
  const waiting = new Map<string, () => void>();
  (async () => {
    const delimiter = "<IDS|MSG>";
    for (;;) {
      const frames: Uint8Array[] = [];
      for (let f = await readFrame(conn);; f = await readFrame(conn)) {
        if (!f.command) frames.push(f.data);
        if (!f.more) break;
      }
      const at = frames.findIndex((x) => x.length === delimiter.length && DEC.decode(x) === delimiter);
      if (at < 0 || frames.length < at + 6) continue;
      const metadata = frames[at + 4];
      if (metadata.length > 200) continue; // markers carry only their token
      const token = (JSON.parse(DEC.decode(metadata)) as { mambabyte_flush?: string }).mambabyte_flush;
      if (!token) continue;
      seen.add(token);
      waiting.get(token)?.();
    }
  })().catch(() => {
    for (const done of waiting.values()) done(); // the connection ended: nobody waits on it
    waiting.clear();
  });

  const sub: Subscriber = {
    waitFor(token, limitMs) {
      if (seen.delete(token)) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => finish(false), limitMs);
        const finish = (ok: boolean) => {
          clearTimeout(timer);
          waiting.delete(token);
          seen.delete(token);
          resolve(ok);
        };
        waiting.set(token, () => finish(true));
      });
    },
  };
  // the subscription is live once a marker comes back: until then, markers sent may be missed
  const hello = crypto.randomUUID();
  for (let i = 0; i < CONNECT_TRIES; i++) {
    await mark(jupyter, hello);
    if (await sub.waitFor(hello, CONNECT_RETRY_MS)) return sub;
  }
  conn.close();
  return undefined;
}
