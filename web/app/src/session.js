// Signing in to the XMPP server over WebSocket (RFC 7395) with @xmpp/client.
import { client, xml } from "@xmpp/client";

import { signInMessage, isTemporary, UserError } from "./messages.js";
import { authenticate as scram, ScramClient, SCRAM_MECHANISMS, StaleKeysError } from "./scram.js";

// Mechanisms in the order the app tries them: SCRAM (scram.js, on WebCrypto), strongest
// first, then PLAIN. A directory (LDAP) user has no SCRAM keys: the Call Bridge answers
// invalid-mechanism and the app tries the next, on the same stream (the link is TLS: wss://).
const MECHANISMS = [...SCRAM_MECHANISMS, "PLAIN"];

// The SCRAM mechanisms run by scram.js are named in @xmpp/client's SASL factory only so that
// it reports them as offered; it never runs them.
class Named {}

// connect opens an XMPP session through the WebSocket at service and resolves with the online
// client. login says who signs in and how, for the first time and for every later
// authentication of the same client (@xmpp/client reconnects to resume the session):
//
//   {username, password}  a password: SCRAM keys are derived from it, handed to
//                         onKeys(keys) and used from then on; the password is dropped
//   {username, keys}      SCRAM keys kept from an earlier sign-in (scram.js)
//   renew()               for a guest: called before every authentication but the first,
//                         resolving with a fresh {username, password} (the one-time
//                         password is spent); the username may change (a new account)
//
// It rejects with a UserError whose message says, in words, why signing in failed; a
// StaleKeysError (as the UserError's cause) means the kept keys no longer fit. When a later
// authentication fails for good, onFatal(err) is told; one that may succeed later (the Call
// Bridge is restarting) closes the socket, so that @xmpp/client tries again.
export async function connect({ service, domain, login, resource, onLog, onKeys, onFatal }) {
  let attempts = 0;
  let authed = false; // the current stream has signed in
  const xmpp = client({
    service,
    domain,
    resource,
    credentials: async (authenticate, offered, _fast, entity) => {
      attempts++;
      if (attempts === 1) {
        await signIn(entity, authenticate, offered);
        authed = true;
        return;
      }
      try {
        if (login.renew) Object.assign(login, await login.renew());
        await signIn(entity, authenticate, offered);
        authed = true;
      } catch (err) {
        if (isTemporary(err)) {
          onLog?.("signing in again failed for now; the connection will retry:", err && err.message);
          setTimeout(() => entity.disconnect().catch(() => {}), 0);
        } else {
          onFatal?.(err);
        }
        throw err;
      }
    },
  });

  async function signIn(entity, authenticate, offered) {
    if (login.keys) {
      const mech = login.keys.mechanism;
      if (!offered.includes(mech)) throw new StaleKeysError(`${mech} is not offered`);
      await scram(entity, xml, new ScramClient(mech, login.username, { keys: login.keys }));
      return;
    }
    const usable = MECHANISMS.filter((m) => offered.includes(m));
    if (usable.length === 0) {
      throw new UserError(signInMessage({ name: "SASLError", condition: "invalid-mechanism" }));
    }
    let last;
    for (const mechanism of usable) {
      try {
        if (mechanism === "PLAIN") {
          await authenticate({ username: login.username, password: login.password }, mechanism);
        } else {
          const keys = await scram(entity, xml, new ScramClient(mechanism, login.username, { password: login.password }));
          if (!login.renew) {
            // A user signs in again with the keys; a guest's password is spent, and renew
            // gives the next one.
            login.keys = keys;
            login.password = null;
            onKeys?.(keys);
          }
        }
        return;
      } catch (err) {
        last = err;
        if (!err || err.condition !== "invalid-mechanism") throw err;
        onLog?.(`${mechanism} refused (invalid-mechanism); trying the next mechanism`);
      }
    }
    throw last;
  }

  // The app's stanzas wait for the stream to be signed in: the page's modules (the media
  // above all) go on sending while the socket is being reopened, and a stanza written
  // between the new stream's start and its sign-in (a guest's renew takes a request) is a
  // stream error that ends the session the reconnection was to resume. Refused here, they
  // fail as they do while the socket is down; stream management resends what it held.
  const send = xmpp.send.bind(xmpp);
  xmpp.on("disconnect", () => {
    authed = false;
  });
  xmpp.send = (el, ...args) => {
    if (!authed && ["iq", "message", "presence"].includes(el.name) && !isBind(el)) {
      return Promise.reject(new Error("not signed in (yet): the connection is being reopened"));
    }
    return send(el, ...args);
  };

  // No reconnecting while signing in: a refused sign-in is shown at once. Once online, the
  // app turns it on, for sessions that can be resumed (resumable, below).
  xmpp.reconnect.stop();
  for (const m of SCRAM_MECHANISMS) xmpp.saslFactory.use(m, Named);
  countEveryStanza(xmpp);
  xmpp.on("error", (err) => onLog?.(`xmpp error: ${err && err.message}`));
  try {
    await xmpp.start();
  } catch (err) {
    // Close in the background: the person should see why at once, not after the close.
    xmpp.stop().catch(() => {});
    const e = new UserError(signInMessage(err), err);
    e.temporary = isTemporary(err);
    e.stale = err instanceof StaleKeysError || (!!login.keys && err && err.condition === "not-authorized");
    throw e;
  }
  return xmpp;
}

// isBind reports whether el is the resource binding request, sent once signed in anyway.
function isBind(el) {
  return el.name === "iq" && !!el.getChild("bind", "urn:ietf:params:xml:ns:xmpp-bind");
}

// resumable reports whether the server enabled stream management with resumption for this
// session (XEP-0198): then a socket lost for a moment is reopened by @xmpp/client's
// reconnect, the session resumed and whatever was in flight either way resent, so the person
// stays in the meeting. Without it, a lost connection ends the session.
export function resumable(xmpp) {
  // The id stays while the socket is down (@xmpp/stream-management clears 'enabled' then)
  // and is cleared when a resumption fails or the session goes offline.
  const sm = xmpp.streamManagement;
  return !!(sm && sm.id);
}

// resumeWindowMs is how long the server keeps a lost session for resumption (its 'max', in
// seconds; 60 s when it names none, at most 5 minutes).
export function resumeWindowMs(xmpp) {
  const max = Number(xmpp.streamManagement && xmpp.streamManagement.max);
  return Math.min(max > 0 ? max : 60, 300) * 1000;
}

// countEveryStanza works around @xmpp/client 0.14: its stream management counts incoming
// stanzas in a middleware that runs after the IQ caller's, and the IQ caller keeps the
// replies to the app's own requests to itself, so 'h' leaves them out. XEP-0198 counts every
// stanza; with too small an 'h' a resumed session is sent those replies, and everything
// after them, a second time. Each incoming stanza the module did not count is counted here
// (the middleware runs synchronously between these two listeners).
function countEveryStanza(xmpp) {
  const sm = xmpp.streamManagement;
  let before = 0;
  xmpp.prependListener("element", () => {
    before = sm.inbound;
  });
  xmpp.on("element", (el) => {
    if (["iq", "message", "presence"].includes(el.name) && sm.inbound === before) sm.inbound += 1;
  });
}
