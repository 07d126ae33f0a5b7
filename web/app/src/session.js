// Signing in to the XMPP server over WebSocket (RFC 7395) with @xmpp/client.
import { client } from "@xmpp/client";
import scramSHA1 from "@xmpp/sasl-scram-sha-1";

import { signInMessage, UserError } from "./messages.js";

// Mechanisms in the order the app tries them. @xmpp/client leaves SCRAM-SHA-1 out of its
// browser build; the mechanism itself runs on WebCrypto, so the app adds it back. A
// directory (LDAP) user has no SCRAM keys: the Call Bridge answers invalid-mechanism and the
// app tries PLAIN next, on the same stream (the link is TLS: wss://).
const MECHANISMS = ["SCRAM-SHA-1", "PLAIN"];

// connect opens an XMPP session for username on domain through the WebSocket at service,
// and resolves with the online client. It rejects with a UserError whose message says, in
// words, why signing in failed.
export async function connect({ service, domain, username, password, resource, onLog }) {
  const xmpp = client({
    service,
    domain,
    resource,
    credentials: async (authenticate, offered) => {
      const usable = MECHANISMS.filter((m) => offered.includes(m));
      if (usable.length === 0) {
        throw new UserError(signInMessage({ name: "SASLError", condition: "invalid-mechanism" }));
      }
      let last;
      for (const mechanism of usable) {
        try {
          await authenticate({ username, password }, mechanism);
          return;
        } catch (err) {
          last = err;
          if (!err || err.condition !== "invalid-mechanism") throw err;
          onLog?.(`${mechanism} refused (invalid-mechanism); trying the next mechanism`);
        }
      }
      throw last;
    },
  });
  // No reconnecting while signing in: a refused sign-in is shown at once. Once online, the
  // app turns it on, for sessions that can be resumed (resumable, below).
  xmpp.reconnect.stop();
  scramSHA1(xmpp.saslFactory);
  countEveryStanza(xmpp);
  xmpp.on("error", (err) => onLog?.(`xmpp error: ${err && err.message}`));
  try {
    await xmpp.start();
  } catch (err) {
    // Close in the background: the person should see why at once, not after the close.
    xmpp.stop().catch(() => {});
    throw new UserError(signInMessage(err), err);
  }
  return xmpp;
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
