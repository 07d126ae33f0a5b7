// SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 7677, RFC 5802) on WebCrypto, as the app's own SASL
// mechanism, so that a signed-in person can be signed in again later in the same browser
// session without the password: a SCRAM client may keep the ClientKey and ServerKey it
// derived, with the salt and iteration count they were derived with (RFC 5802 §5.1), and
// prove itself with them alone. The password is used once and dropped. Kept keys are used
// only while the server's salt and iteration count are the same; otherwise (the password was
// changed) StaleKeysError asks for the password again.
//
// The exchange is run on the XMPP stream here rather than through @xmpp/sasl, which neither
// starts from kept keys nor checks the server's signature in <success/>.

const HASH = { "SCRAM-SHA-256": "SHA-256", "SCRAM-SHA-1": "SHA-1" };
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
// A server that asks for more iterations than this is refused: the browser would hang.
const MAX_ITERATIONS = 1 << 20;

// SCRAM_MECHANISMS are the mechanisms of this module, strongest first.
export const SCRAM_MECHANISMS = Object.freeze(Object.keys(HASH));

// StaleKeysError: the kept keys no longer fit (the salt or iteration count changed, or the
// mechanism is not offered); the person must give the password.
export class StaleKeysError extends Error {
  constructor(message = "the kept SCRAM keys are out of date") {
    super(message);
    this.name = "StaleKeysError";
  }
}

// ScramError: the server broke the exchange, or could not prove it knows the password.
export class ScramError extends Error {
  constructor(message) {
    super(message);
    this.name = "ScramError";
  }
}

const enc = new TextEncoder();

export function toBase64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function saslName(name) {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

function parse(msg) {
  const out = {};
  for (const part of msg.split(",")) {
    const i = part.indexOf("=");
    if (i === 1) out[part[0]] = part.slice(2);
  }
  return out;
}

async function hmac(hash, key, data) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, typeof data === "string" ? enc.encode(data) : data));
}

async function digest(hash, data) {
  return new Uint8Array(await crypto.subtle.digest(hash, data));
}

function xor(a, b) {
  return a.map((x, i) => x ^ b[i]);
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

// deriveKeys returns the ClientKey and ServerKey of a password (RFC 5802 §3).
export async function deriveKeys(mechanism, password, salt, iterations) {
  const hash = HASH[mechanism];
  const bits = hash === "SHA-1" ? 160 : 256;
  const base = await crypto.subtle.importKey("raw", enc.encode(password), "PBKDF2", false, ["deriveBits"]);
  const salted = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash, salt, iterations }, base, bits));
  return {
    clientKey: await hmac(hash, salted, "Client Key"),
    serverKey: await hmac(hash, salted, "Server Key"),
  };
}

// ScramClient is one SCRAM exchange: first() is the client-first message, final() answers
// the server-first message, verify() checks the server-final one. Give it a password, or
// keys kept from an earlier exchange ({mechanism, username, salt, iterations, clientKey,
// serverKey}, base64 where binary); after final(), keys holds what may be kept.
export class ScramClient {
  constructor(mechanism, username, { password = null, keys = null, nonce = null } = {}) {
    if (!HASH[mechanism]) throw new Error(`unknown mechanism ${mechanism}`);
    if (keys && (keys.mechanism !== mechanism || keys.username !== username)) throw new StaleKeysError();
    this.mechanism = mechanism;
    this.hash = HASH[mechanism];
    this.username = username;
    this.password = password;
    this.kept = keys;
    this.nonce = nonce || toBase64(crypto.getRandomValues(new Uint8Array(18)));
    this.keys = null;
    this.expected = null;
  }

  first() {
    this.firstBare = `n=${saslName(this.username)},r=${this.nonce}`;
    return "n,," + this.firstBare;
  }

  async final(serverFirst) {
    const a = parse(serverFirst);
    if (a.m !== undefined) throw new ScramError("the server asked for an unsupported SCRAM extension");
    if (a.e !== undefined) throw new ScramError(`the server refused: ${a.e}`);
    const iterations = Number(a.i);
    if (!a.r || !a.r.startsWith(this.nonce) || a.r.length <= this.nonce.length || !a.s) {
      throw new ScramError("the server's first SCRAM message is not valid");
    }
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
      throw new ScramError("the server asked for an unusable iteration count");
    }
    let clientKey, serverKey;
    if (this.kept) {
      if (this.kept.salt !== a.s || Number(this.kept.iterations) !== iterations) throw new StaleKeysError();
      clientKey = fromBase64(this.kept.clientKey);
      serverKey = fromBase64(this.kept.serverKey);
    } else {
      if (this.password === null) throw new StaleKeysError("no password and no keys");
      ({ clientKey, serverKey } = await deriveKeys(this.mechanism, this.password, fromBase64(a.s), iterations));
    }
    const withoutProof = `c=biws,r=${a.r}`;
    const auth = `${this.firstBare},${serverFirst},${withoutProof}`;
    const storedKey = await digest(this.hash, clientKey);
    const proof = xor(clientKey, await hmac(this.hash, storedKey, auth));
    this.expected = await hmac(this.hash, serverKey, auth);
    this.keys = {
      mechanism: this.mechanism,
      username: this.username,
      salt: a.s,
      iterations,
      clientKey: toBase64(clientKey),
      serverKey: toBase64(serverKey),
    };
    this.password = null;
    return `${withoutProof},p=${toBase64(proof)}`;
  }

  // verify checks the server's signature: only a server that holds the user's keys can make
  // it. It throws a ScramError if it does not match.
  verify(serverFinal) {
    const a = parse(serverFinal);
    if (a.e !== undefined) throw new ScramError(`the server refused: ${a.e}`);
    if (!this.expected || !a.v || !equal(fromBase64(a.v), this.expected)) {
      throw new ScramError("the server could not prove that it knows your password");
    }
    this.verified = true;
  }
}

function utf8(b64) {
  if (!b64 || b64 === "=") return "";
  return new TextDecoder().decode(fromBase64(b64));
}

function b64(s) {
  return toBase64(enc.encode(s));
}

// saslError is a failed SASL exchange as @xmpp/sasl reports one (name SASLError, condition,
// text), so that the app's messages read both alike.
function saslError(el) {
  const [cond, ...rest] = el.getChildElements();
  const t = rest.find((c) => c.is("text"));
  const err = new Error(cond ? cond.name : "failure");
  err.name = "SASLError";
  err.condition = cond ? cond.name : "";
  err.text = t ? t.text() : "";
  err.element = el;
  return err;
}

// authenticate runs client's SCRAM exchange on entity (an @xmpp/client whose stream offers
// the mechanism) with the xml factory of @xmpp/client, resolving once the server's <success/>
// is verified. A <failure/> rejects with a SASLError.
export function authenticate(entity, xml, client) {
  return new Promise((resolve, reject) => {
    let sentFinal = false;
    let over = false;
    const done = (err) => {
      if (over) return;
      over = true;
      entity.removeListener("nonza", onNonza);
      entity.removeListener("disconnect", onDisconnect);
      if (err) reject(err);
      else resolve(client.keys);
    };
    // A socket lost in the middle ends this exchange: left listening, it would take the next
    // connection's challenge for its own, and refuse it.
    function onDisconnect() {
      const err = new Error("the connection was lost while signing in");
      err.temporary = true;
      done(err);
    }
    entity.on("disconnect", onDisconnect);
    async function onNonza(el) {
      if (over || el.attrs.xmlns !== NS_SASL) return;
      try {
        if (el.name === "challenge") {
          if (!sentFinal) {
            sentFinal = true;
            const msg = await client.final(utf8(el.text()));
            await entity.send(xml("response", { xmlns: NS_SASL }, b64(msg)));
          } else {
            // The server-final message, sent as a challenge before an empty <success/>.
            client.verify(utf8(el.text()));
            await entity.send(xml("response", { xmlns: NS_SASL }));
          }
        } else if (el.name === "success") {
          const data = utf8(el.text());
          if (data) client.verify(data);
          else if (!client.verified) throw new ScramError("the server did not prove that it knows your password");
          done();
        } else if (el.name === "failure") {
          done(saslError(el));
        }
      } catch (err) {
        if (err instanceof StaleKeysError || err instanceof ScramError) {
          entity.send(xml("abort", { xmlns: NS_SASL })).catch(() => {});
        }
        done(err);
      }
    }
    entity.on("nonza", onNonza);
    entity.send(xml("auth", { xmlns: NS_SASL, mechanism: client.mechanism }, b64(client.first()))).catch(done);
  });
}
