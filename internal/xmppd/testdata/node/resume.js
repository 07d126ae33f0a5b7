// Stream management interop client for the internal/xmppd tests: @xmpp/client (xmpp.js,
// with @xmpp/stream-management) over XMPP over WebSocket (RFC 7395).
//
// Usage: node resume.js <wss-url> <domain> <username> <password>
//
// It logs in (xmpp.js enables stream management with resumption on its own), then obeys
// one command a line on stdin:
//
//	drop    close the WebSocket without closing the XMPP stream, as a lost network would
//	resume  reconnect; xmpp.js resumes the session (XEP-0198)
//	quit    close the stream and exit
//
// Every event prints one JSON object on stdout: online (jid, body = the resumption id),
// message (body), disconnected, resumed, error. Trust for the test CA comes from
// NODE_EXTRA_CA_CERTS.

import { createInterface } from "node:readline";
import { client, xml } from "@xmpp/client";

const [service, domain, username, password] = process.argv.slice(2);

function report(step, fields = {}) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
}

function fail(error) {
  report("error", { error: String(error && error.message ? error.message : error) });
  process.exit(1);
}

const timer = setTimeout(() => fail("timed out"), 50000);

const xmpp = client({ service, domain, username, password, resource: "xmppjs-sm" });
xmpp.on("error", (err) => report("warning", { error: String(err && err.message ? err.message : err) }));
xmpp.on("stanza", (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body")) {
    report("message", { body: stanza.getChildText("body") });
  }
});
xmpp.on("disconnect", () => report("disconnected"));
xmpp.streamManagement.on("resumed", () => report("resumed"));

let online = false;
xmpp.on("online", async (address) => {
  if (online) {
    return;
  }
  online = true;
  // xmpp.js binds (and is online), then enables stream management: wait for <enabled/>.
  const sm = xmpp.streamManagement;
  for (let i = 0; i < 100 && !(sm.enabled && sm.id); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!sm.enabled || !sm.id) {
    fail("stream management was not enabled with resumption");
  }
  await xmpp.send(xml("presence"));
  report("online", { jid: address.toString(), body: sm.id });
});

createInterface({ input: process.stdin }).on("line", async (line) => {
  try {
    switch (line.trim()) {
      case "drop":
        xmpp.reconnect.stop();
        xmpp.socket.end();
        break;
      case "resume":
        xmpp.reconnect.start();
        await xmpp.reconnect.reconnect();
        break;
      case "quit":
        await xmpp.stop();
        clearTimeout(timer);
        report("stopped");
        process.exit(0);
    }
  } catch (err) {
    fail(err);
  }
});

xmpp.start().catch(fail);
