// The meeting protocol of docs/protocol.md, namespace urn:confab:meeting:1, between the browser
// and the Call Bridge.
import { xml, jid as parseJID } from "@xmpp/client";

import { MSG, UserError, requestMessage } from "./messages.js";

export const NS = "urn:confab:meeting:1";
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const JOIN_TIMEOUT = 15000;
const IQ_TIMEOUT = 15000;

// listSpaces asks the Call Bridge for the spaces the user may join.
export async function listSpaces(xmpp, callBridgeJid) {
  let res;
  try {
    res = await xmpp.iqCaller.get(xml("spaces", { xmlns: NS }), callBridgeJid, IQ_TIMEOUT);
  } catch (err) {
    throw new UserError(requestMessage(err, MSG.joinFailed), err);
  }
  return (res ? res.getChildren("space") : []).map((s) => ({
    jid: s.attrs.jid || "",
    name: s.attrs.name || s.attrs.jid || "",
    callId: s.attrs.callId || "",
    uri: s.attrs.uri || "",
  }));
}

// lookup finds a space by call ID and passcode.
export async function lookup(xmpp, callBridgeJid, callId, passcode) {
  let res;
  try {
    res = await xmpp.iqCaller.get(xml("lookup", { xmlns: NS, callId, passcode }), callBridgeJid, IQ_TIMEOUT);
  } catch (err) {
    throw new UserError(requestMessage(err, MSG.invalidCall), err);
  }
  const space = res && res.getChild("space");
  if (!space || !space.attrs.jid) throw new UserError(MSG.invalidCall);
  return { jid: space.attrs.jid, name: space.attrs.name || space.attrs.jid };
}

// Meeting is one joined space: it tracks the participants and the chat, and tells the page
// through callbacks. Events: onParticipant(p, isNew), onParticipantLeft(p), onChat(m), onEnded(msg).
export class Meeting {
  constructor(xmpp, spaceJid, name, handlers) {
    this.xmpp = xmpp;
    this.space = parseJID(spaceJid).bare().toString();
    this.name = name;
    this.h = handlers;
    this.participants = new Map();
    this.selfId = "";
    this.joined = false;
    this.left = false;
    // The nickname part of the join address is not used by the Call Bridge ("anything"),
    // but it must be a valid resourcepart.
    this.nick = "p" + Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
    this.onStanza = (stanza) => this.handle(stanza);
  }

  // join sends the join presence and resolves once the Call Bridge has confirmed it (the
  // presence with self='true'), or rejects with a UserError.
  join() {
    return new Promise((resolve, reject) => {
      this.joinWaiter = { resolve, reject };
      this.joinTimer = setTimeout(() => this.failJoin(new UserError(MSG.noAnswer)), JOIN_TIMEOUT);
      this.xmpp.on("stanza", this.onStanza);
      this.xmpp
        .send(xml("presence", { to: `${this.space}/${this.nick}` }, xml("join", { xmlns: NS, name: this.name })))
        .catch((err) => this.failJoin(new UserError(MSG.connectionLost, err)));
    });
  }

  failJoin(err) {
    clearTimeout(this.joinTimer);
    this.xmpp.removeListener("stanza", this.onStanza);
    const w = this.joinWaiter;
    this.joinWaiter = null;
    w?.reject(err);
  }

  fromSpace(from) {
    if (!from) return null;
    try {
      const j = parseJID(from);
      return j.bare().toString() === this.space ? j : null;
    } catch {
      return null;
    }
  }

  handle(stanza) {
    const from = this.fromSpace(stanza.attrs.from);
    if (!from) return;
    if (stanza.is("presence")) this.presence(stanza, from.resource || "");
    else if (stanza.is("message") && stanza.attrs.type === "groupchat") this.message(stanza, from.resource || "");
  }

  presence(stanza, id) {
    const type = stanza.attrs.type;
    if (type === "error") {
      const err = stanza.getChild("error");
      const text = err && err.getChildText("text", NS_STANZAS);
      const forbidden = err && err.getChild("forbidden", NS_STANZAS);
      const msg = text || (forbidden ? MSG.joinRefused : MSG.joinFailed);
      if (this.joinWaiter) this.failJoin(new UserError(msg));
      return;
    }
    const p = stanza.getChild("participant", NS);
    const pid = (p && p.attrs.id) || id;
    if (type === "unavailable") {
      if (pid === this.selfId) {
        // The Call Bridge ended our participation (the meeting was closed, or we were
        // removed).
        this.end(MSG.connectionLost);
        return;
      }
      const gone = this.participants.get(pid);
      this.participants.delete(pid);
      if (gone) this.h.onParticipantLeft?.(gone);
      return;
    }
    if (type || !p) return;
    const participant = {
      id: pid,
      name: p.attrs.name || pid,
      jid: p.attrs.jid || "",
      role: p.attrs.role || "",
      self: p.attrs.self === "true",
    };
    const known = this.participants.has(pid);
    this.participants.set(pid, participant);
    if (participant.self) this.selfId = pid;
    this.h.onParticipant?.(participant, !known);
    if (participant.self && this.joinWaiter) {
      clearTimeout(this.joinTimer);
      this.joined = true;
      const w = this.joinWaiter;
      this.joinWaiter = null;
      w.resolve(participant);
    }
  }

  message(stanza, id) {
    const body = stanza.getChildText("body");
    if (body === null || body === undefined) return;
    const p = stanza.getChild("participant", NS);
    const pid = (p && p.attrs.id) || id;
    const known = this.participants.get(pid);
    this.h.onChat?.({
      from: pid,
      name: (p && p.attrs.name) || (known && known.name) || pid,
      body,
      self: pid !== "" && pid === this.selfId,
      at: new Date(),
    });
  }

  // say sends a chat message to everyone in the space (the Call Bridge echoes it back).
  async say(body) {
    await this.xmpp.send(xml("message", { type: "groupchat", to: this.space }, xml("body", {}, body)));
  }

  // leave sends the unavailable presence.
  async leave() {
    if (this.left) return;
    this.left = true;
    this.xmpp.removeListener("stanza", this.onStanza);
    try {
      await this.xmpp.send(xml("presence", { type: "unavailable", to: `${this.space}/${this.nick}` }));
    } catch {
      // The connection is gone; the XMPP server leaves for us (docs/protocol.md, "Leaving").
    }
  }

  end(msg) {
    if (this.left) return;
    this.left = true;
    this.xmpp.removeListener("stanza", this.onStanza);
    this.h.onEnded?.(msg);
  }
}
