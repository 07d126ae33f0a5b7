// Interop client for the internal/xmppd tests, written with @xmpp/client (xmpp.js) over
// XMPP over WebSocket (RFC 7395).
//
// Usage: node client.js <wss-url> <domain> <username> <password> <peer-jid> <component-jid>
//
// It logs in (SASL chosen by xmpp.js among what the server offers), binds the resource
// "xmppjs", sends a chat message to the peer, pings the component and the server (XEP-0199),
// waits for one chat message back and exits. Every step prints one JSON object on stdout;
// the exit status is 0 when every step succeeded. Trust for the test CA comes from
// NODE_EXTRA_CA_CERTS.

import { client, xml } from "@xmpp/client";

const [service, domain, username, password, peer, component] = process.argv.slice(2);

function report(step, fields = {}) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
}

function fail(error) {
  report("error", { error: String(error && error.message ? error.message : error) });
  process.exit(1);
}

const timer = setTimeout(() => fail("timed out"), 40000);

let gotReply;
const reply = new Promise((resolve) => {
  gotReply = resolve;
});

const xmpp = client({ service, domain, username, password, resource: "xmppjs" });
xmpp.on("error", fail);
xmpp.on("stanza", (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body")) {
    gotReply(stanza.getChildText("body"));
  }
});
xmpp.on("online", async (address) => {
  try {
    report("bound", { jid: address.toString() });
    await xmpp.send(xml("presence"));
    await xmpp.send(xml("message", { to: peer, type: "chat" }, xml("body", {}, "hello from xmpp.js")));
    report("sent", { to: peer });
    await xmpp.iqCaller.request(xml("iq", { type: "get", to: component }, xml("ping", "urn:xmpp:ping")), 10000);
    report("ping", { to: component });
    await xmpp.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", "urn:xmpp:ping")), 10000);
    report("ping", { to: domain });
    report("reply", { body: await reply });
    await xmpp.stop();
    clearTimeout(timer);
    report("disconnected");
    process.exit(0);
  } catch (err) {
    fail(err);
  }
});

xmpp.start().catch(fail);
