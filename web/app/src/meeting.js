// The meeting protocol of docs/protocol.md, namespace urn:confab:meeting:1, between the browser
// and the Call Bridge.
import { xml, jid as parseJID } from "@xmpp/client";

import { MSG, UserError, requestMessage } from "./messages.js";

export const NS = "urn:confab:meeting:1";
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const JOIN_TIMEOUT = 15000;
const IQ_TIMEOUT = 15000;
const PING_TIMEOUT = 10000;

// Stanza errors that mean the Call Bridge cannot be reached (the XMPP server answers them
// for a component that is not connected): the meeting is interrupted, not refused.
export const UNREACHABLE = new Set(["remote-server-not-found", "service-unavailable", "recipient-unavailable", "remote-server-timeout"]);

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
    passcode: s.attrs.passcode || "",
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
// through callbacks. Events: onParticipant(p, isNew), onParticipantLeft(p), onChat(m),
// onChatError(id, text, condition), onEnded(msg, reason) when the Call Bridge ended our
// participation (reason "ended" or "removed"), and onInterrupted(why) when the meeting was
// lost without anyone ending it (the Call Bridge went away, or forgot us): the page rejoins.
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
    else if (stanza.is("message") && (stanza.attrs.type === "groupchat" || stanza.attrs.type === "error")) this.message(stanza, from.resource || "");
  }

  presence(stanza, id) {
    const type = stanza.attrs.type;
    if (type === "error") {
      const e = stanzaError(stanza);
      if (this.joinWaiter) {
        const msg = e.text || (e.condition === "forbidden" ? MSG.joinRefused : MSG.joinFailed);
        const err = new UserError(msg);
        err.condition = e.condition;
        err.type = e.type;
        this.failJoin(err);
      } else if (this.joined && UNREACHABLE.has(e.condition)) {
        this.interrupt(`presence error ${e.condition}`);
      }
      return;
    }
    const p = stanza.getChild("participant", NS);
    const pid = (p && p.attrs.id) || id;
    if (type === "unavailable") {
      if (this.joined && (pid === this.selfId || (!p && (!id || id === this.nick)))) {
        // From our own address: the Call Bridge ended our participation, and says why. With
        // no reason, or without a <participant/> (the XMPP server speaking for a Call Bridge
        // that went away, from the space or the address we joined at), the meeting was lost
        // under us.
        const reason = p && p.attrs.reason;
        if (reason === "ended" || reason === "removed") {
          const status = stanza.getChildText("status");
          this.end(status || (reason === "ended" ? MSG.endedByOrganiser : MSG.removed), reason);
        } else {
          this.interrupt(p ? "own unavailable presence without a reason" : "unavailable presence from the space");
        }
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
    if (stanza.attrs.type === "error") {
      const e = stanzaError(stanza);
      this.h.onChatError?.(stanza.attrs.id || "", e.text, e.condition);
      if (this.joined && UNREACHABLE.has(e.condition)) this.interrupt(`message error ${e.condition}`);
      return;
    }
    const body = stanza.getChildText("body");
    if (body === null || body === undefined) return;
    const p = stanza.getChild("participant", NS);
    const pid = (p && p.attrs.id) || id;
    const known = this.participants.get(pid);
    this.h.onChat?.({
      id: stanza.attrs.id || "",
      from: pid,
      name: (p && p.attrs.name) || (known && known.name) || pid,
      body,
      self: pid !== "" && pid === this.selfId,
      at: new Date(),
    });
  }

  // say sends a chat message to everyone in the space with the given id (the Call Bridge
  // echoes it back with the same id, which tells the page it was sent).
  async say(body, id) {
    await this.xmpp.send(xml("message", { type: "groupchat", to: this.space, id }, xml("body", {}, body)));
  }

  // ping asks the Call Bridge whether it still has us in the meeting (a self-ping to our own
  // address, docs/protocol.md): "ok"; "gone" when it does not; "unreachable" when the XMPP
  // server says the Call Bridge cannot be reached; "timeout" without an answer.
  async ping() {
    if (!this.selfId || this.left) return "gone";
    try {
      await this.xmpp.iqCaller.request(xml("iq", { type: "get", to: `${this.space}/${this.selfId}` }, xml("ping", { xmlns: NS })), PING_TIMEOUT);
      return "ok";
    } catch (err) {
      if (err && err.name === "TimeoutError") return "timeout";
      if (err && UNREACHABLE.has(err.condition)) return "unreachable";
      if (err && err.condition) return "gone";
      return "timeout"; // not sent: the connection is down
    }
  }

  // leavePresence is the unavailable presence that leaves the space.
  leavePresence() {
    return xml("presence", { type: "unavailable", to: `${this.space}/${this.nick}` });
  }

  // leave sends the unavailable presence.
  async leave() {
    if (this.left) return;
    this.left = true;
    this.xmpp.removeListener("stanza", this.onStanza);
    try {
      await this.xmpp.send(this.leavePresence());
    } catch {
      // The connection is gone; the XMPP server leaves for us (docs/protocol.md, "Leaving").
    }
  }

  // detach stops listening, without telling the Call Bridge anything: the meeting is over
  // for this object (a rejoin makes a new one).
  detach() {
    this.left = true;
    clearTimeout(this.joinTimer);
    this.xmpp.removeListener("stanza", this.onStanza);
  }

  end(msg, reason) {
    if (this.left) return;
    this.detach();
    this.h.onEnded?.(msg, reason);
  }

  interrupt(why) {
    if (this.left) return;
    this.detach();
    this.h.onInterrupted?.(why);
  }
}

// stanzaError reads a stanza's <error/>: its condition, type and text.
function stanzaError(stanza) {
  const err = stanza.getChild("error");
  if (!err) return { condition: "", type: "", text: "" };
  const cond = err.getChildElements().find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== "text");
  return { condition: cond ? cond.name : "", type: err.attrs.type || "", text: err.getChildText("text", NS_STANZAS) || "" };
}
