// The SCRAM client against the examples of RFC 5802 (SHA-1) and RFC 7677 (SHA-256), and
// signing in again from the kept keys alone.
import { test } from "node:test";
import assert from "node:assert/strict";

import { ScramClient, StaleKeysError, ScramError } from "../src/scram.js";

const vectors = [
  {
    rfc: "RFC 5802",
    mechanism: "SCRAM-SHA-1",
    nonce: "fyko+d2lbbFgONRv9qkxdawL",
    serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
  },
  {
    rfc: "RFC 7677",
    mechanism: "SCRAM-SHA-256",
    nonce: "rOprNGfwEbeRWgbNEkqO",
    serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  },
];

for (const v of vectors) {
  test(`${v.mechanism}: the example of ${v.rfc}, with the password and then with the kept keys`, async () => {
    const c = new ScramClient(v.mechanism, "user", { password: "pencil", nonce: v.nonce });
    assert.equal(c.first(), `n,,n=user,r=${v.nonce}`);
    assert.equal(await c.final(v.serverFirst), v.clientFinal);
    c.verify(v.serverFinal);
    const keys = c.keys;
    assert.equal(JSON.stringify(keys).includes("pencil"), false, "the password is not kept");
    assert.equal(c.password, null, "the password is dropped after use");

    // Later: the same proof from the keys alone.
    const again = new ScramClient(v.mechanism, "user", { keys, nonce: v.nonce });
    again.first();
    assert.equal(await again.final(v.serverFirst), v.clientFinal);
    again.verify(v.serverFinal);
  });
}

test("kept keys do not fit another salt or iteration count: the password is asked for", async () => {
  const v = vectors[1];
  const c = new ScramClient(v.mechanism, "user", { password: "pencil", nonce: v.nonce });
  c.first();
  await c.final(v.serverFirst);
  for (const changed of [v.serverFirst.replace("i=4096", "i=8192"), v.serverFirst.replace("s=W22", "s=X22")]) {
    const k = new ScramClient(v.mechanism, "user", { keys: c.keys, nonce: v.nonce });
    k.first();
    await assert.rejects(k.final(changed), StaleKeysError);
  }
  assert.throws(() => new ScramClient("SCRAM-SHA-1", "user", { keys: c.keys }), StaleKeysError);
  assert.throws(() => new ScramClient(v.mechanism, "someone", { keys: c.keys }), StaleKeysError);
});

test("a server that cannot prove it knows the password is refused", async () => {
  const v = vectors[1];
  const c = new ScramClient(v.mechanism, "user", { password: "pencil", nonce: v.nonce });
  c.first();
  await c.final(v.serverFirst);
  assert.throws(() => c.verify("v=" + Buffer.alloc(32).toString("base64")), ScramError);
  assert.throws(() => c.verify("e=invalid-proof"), ScramError);
});

test("bad server-first messages are refused", async () => {
  for (const sf of [
    "r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096", // not our nonce
    "r=abc,s=QSXCR+Q6sek8bf92,i=4096", // our nonce, nothing added
    "r=abcdef,s=QSXCR+Q6sek8bf92,i=0",
    "r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999",
    "m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",
  ]) {
    const c = new ScramClient("SCRAM-SHA-1", "user", { password: "pencil", nonce: "abc" });
    c.first();
    await assert.rejects(c.final(sf), ScramError, sf);
  }
});

test("names with = and , are escaped", () => {
  const c = new ScramClient("SCRAM-SHA-256", "a=b,c", { password: "x", nonce: "n" });
  assert.equal(c.first(), "n,,n=a=3Db=2Cc,r=n");
});

test("an exchange cut by a lost socket ends, and does not take the next one's challenge", async () => {
  const { EventEmitter } = await import("node:events");
  const { authenticate } = await import("../src/scram.js");
  const entity = new EventEmitter();
  const sent = [];
  entity.send = async (el) => sent.push(el);
  const xml = (name, attrs, text) => ({ name, attrs, text });
  const p = authenticate(entity, xml, new ScramClient("SCRAM-SHA-256", "user", { password: "pencil", nonce: "abc" }));
  entity.emit("disconnect");
  await assert.rejects(p, (err) => err.temporary === true);
  assert.equal(entity.listenerCount("nonza"), 0);
  assert.equal(entity.listenerCount("disconnect"), 0);
  assert.equal(sent.length, 1, "only the <auth/>");
});
