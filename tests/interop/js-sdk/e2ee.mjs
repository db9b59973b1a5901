// Real end-to-end encryption against Lethe: matrix-js-sdk with the Rust crypto stack (matrix-sdk-crypto-wasm) in Node.
//
//   node e2ee.mjs http://127.0.0.1:PORT
//
// Alice and Bob bootstrap cross-signing, share an encrypted room and decrypt each other's messages; Bob backs up his
// room keys; a second device of Bob logs in later, gets the old keys from the backup and new ones by key sharing.
// Prints one line per step and exits 0 only when every step passed.

// Node 20: the SDK uses Promise.withResolvers (Node 22). Storage for the crypto store: an in-memory IndexedDB.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
import "fake-indexeddb/auto";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel(process.env.LETHE_JS_DEBUG ? "debug" : "error");

const baseUrl = process.argv[2];
if (!baseUrl) {
  console.error("usage: node e2ee.mjs <homeserver base URL>");
  process.exit(2);
}

const PASSWORD = "correct horse battery staple";
const STEP_TIMEOUT_MS = 45_000;
const clients = [];
let failed = false;

async function step(name, fn) {
  const started = Date.now();
  try {
    const result = await withTimeout(fn(), STEP_TIMEOUT_MS, name);
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
    return result;
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    throw e;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]);
}

/** Polls a condition (no fixed sleeps): resolves when it holds, rejects after the timeout. */
async function until(what, condition, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function api(method, path, body, token) {
  const response = await fetch(baseUrl + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function register(username) {
  return api("POST", "/_matrix/client/v3/register", { username, password: PASSWORD, auth: { type: "m.login.dummy" }, initial_device_display_name: `${username} first` });
}

async function login(userId, name) {
  return api("POST", "/_matrix/client/v3/login", {
    type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password: PASSWORD, initial_device_display_name: name,
  });
}

async function startClient(session) {
  const client = sdk.createClient({
    baseUrl,
    userId: session.user_id,
    deviceId: session.device_id,
    accessToken: session.access_token,
    cryptoCallbacks: {},
  });
  clients.push(client);
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise((resolve, reject) => {
    client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
      if (state === "PREPARED") resolve();
      if (state === "ERROR") reject(data?.error ?? new Error("sync error"));
    });
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
  return client;
}

/** Cross-signing bootstrap, answering the server's user-interactive auth with the password when it asks. */
async function bootstrapCrossSigning(client) {
  const crypto = client.getCrypto();
  await crypto.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      try {
        await makeRequest(null);
      } catch (e) {
        const session = e?.data?.session;
        if (!session) throw e;
        await makeRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: client.getUserId() }, password: PASSWORD, session });
      }
    },
  });
}

/** The decrypted body of the first timeline event in the room whose decrypted body satisfies the predicate. */
async function decryptedBody(client, roomId, predicate, what) {
  return until(what, async () => {
    const room = client.getRoom(roomId);
    if (!room) return null;
    for (const event of room.getLiveTimeline().getEvents()) {
      if (event.getWireType() !== "m.room.encrypted") continue;
      await client.decryptEventIfNeeded(event);
      if (!event.isDecryptionFailure() && event.getType() === "m.room.message" && predicate(event.getContent().body ?? "")) {
        return event.getContent().body;
      }
    }
    return null;
  });
}

async function main() {
  const suffix = Date.now().toString(36);
  const aliceSession = await step("register alice", () => register(`alice${suffix}`));
  const bobSession = await step("register bob", () => register(`bob${suffix}`));
  const alice = await step("alice starts with Rust crypto", () => startClient(aliceSession));
  const bob = await step("bob starts with Rust crypto", () => startClient(bobSession));

  await step("alice bootstraps cross-signing", async () => {
    await bootstrapCrossSigning(alice);
    await until("alice cross-signing ready", () => alice.getCrypto().isCrossSigningReady());
    // The self-signing key's signature over the device travels through /keys/signatures/upload and back via /keys/query.
    await until("alice's device cross-signed by her self-signing key", async () =>
      (await alice.getCrypto().getDeviceVerificationStatus(alice.getUserId(), alice.getDeviceId()))?.crossSigningVerified);
  });
  await step("bob bootstraps cross-signing", async () => {
    await bootstrapCrossSigning(bob);
    await until("bob cross-signing ready", () => bob.getCrypto().isCrossSigningReady());
  });
  await step("cross-signing keys of bob are visible to alice", async () => {
    await until("bob's master key seen by alice", async () => {
      const map = await alice.getCrypto().getUserDeviceInfo([bob.getUserId()], true);
      const identity = await alice.getCrypto().getUserVerificationStatus(bob.getUserId());
      return map.get(bob.getUserId())?.has(bob.getDeviceId()) && identity ? true : null;
    });
    const keys = await api("POST", "/_matrix/client/v3/keys/query", { device_keys: { [bob.getUserId()]: [] } }, aliceSession.access_token);
    if (!keys.master_keys?.[bob.getUserId()]) throw new Error("no master key for bob in /keys/query");
  });

  const bobBackupVersion = await step("bob creates a key backup", async () => {
    await bob.getCrypto().resetKeyBackup();
    return until("bob's active backup", () => bob.getCrypto().getActiveSessionBackupVersion());
  });

  const roomId = await step("alice creates an encrypted room and invites bob", async () => {
    const { room_id } = await alice.createRoom({
      invite: [bob.getUserId()],
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    return room_id;
  });
  await step("bob joins", async () => {
    await until("bob sees the invite", () => bob.getRoom(roomId));
    await bob.joinRoom(roomId);
    await until("alice sees bob joined", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");
  });

  await step("alice sends, bob decrypts", async () => {
    await alice.sendMessage(roomId, { msgtype: "m.text", body: "hello bob, from alice" });
    const body = await decryptedBody(bob, roomId, (b) => b === "hello bob, from alice", "bob decrypting alice's message");
    if (body !== "hello bob, from alice") throw new Error(`bob read ${body}`);
  });
  await step("bob replies, alice decrypts", async () => {
    await bob.sendMessage(roomId, { msgtype: "m.text", body: "hi alice, bob here" });
    await decryptedBody(alice, roomId, (b) => b === "hi alice, bob here", "alice decrypting bob's reply");
  });

  await step("bob's room keys reach the server-side backup", async () => {
    await until("backup holds keys", async () => {
      const info = await api("GET", `/_matrix/client/v3/room_keys/version/${bobBackupVersion}`, undefined, bobSession.access_token);
      return info.count >= 1;
    });
  });

  const bob2Session = await step("bob logs in on a second device", () => login(bob.getUserId(), "bob second"));
  const bob2 = await step("bob's second device starts", () => startClient(bob2Session));

  await step("bob's second device restores the old keys from the backup and decrypts history", async () => {
    const key = await bob.getCrypto().getSessionBackupPrivateKey();
    if (!key) throw new Error("bob has no backup key");
    await bob2.getCrypto().storeSessionBackupPrivateKey(key, bobBackupVersion);
    const result = await bob2.getCrypto().restoreKeyBackup();
    if (!result || result.imported < 1) throw new Error(`restored ${JSON.stringify(result)}`);
    await decryptedBody(bob2, roomId, (b) => b === "hello bob, from alice", "bob's second device decrypting the old message");
  });

  await step("alice sees bob's new device and shares the next key with it", async () => {
    await until("alice knows bob's second device", async () => {
      const map = await alice.getCrypto().getUserDeviceInfo([bob.getUserId()]);
      return map.get(bob.getUserId())?.has(bob2.getDeviceId());
    });
    await alice.sendMessage(roomId, { msgtype: "m.text", body: "welcome, second device" });
    await decryptedBody(bob2, roomId, (b) => b === "welcome, second device", "bob's second device decrypting a new message");
    await decryptedBody(bob, roomId, (b) => b === "welcome, second device", "bob's first device decrypting the new message");
  });
}

let code = 0;
try {
  await main();
} catch {
  code = 1;
} finally {
  for (const c of clients) {
    try { c.stopClient(); } catch { /* already stopped */ }
  }
}
console.log(failed || code ? "js-sdk e2ee interop: FAILED" : "js-sdk e2ee interop: all steps passed");
process.exit(failed || code ? 1 : 0);
