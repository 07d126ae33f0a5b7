// Unit tests of the media negotiation (media.js) against a fake RTCPeerConnection that keeps
// the JSEP signalling states, and a fake XMPP client whose IQ answers the test gives: the
// first offer, the server's offers, glare in both orders, the screen share's mark, and the
// fresh connection after <ended/>. The real browser and server meet in internal/launch's
// media browser tests; glare is too rare there to be seen on purpose.
import { test } from "node:test";
import assert from "node:assert/strict";
import { xml } from "@xmpp/client";

// ---- fakes --------------------------------------------------------------------------------

let ids = 0;
class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.id = `${kind}-${++ids}`;
    this.enabled = true;
  }
  stop() {}
}
globalThis.MediaStream = class {
  constructor(tracks = []) {
    this.id = `stream-${++ids}`;
    this.tracks = tracks;
  }
  getTracks() {
    return this.tracks;
  }
};

const pcs = [];
class FakePC extends EventTarget {
  constructor(config) {
    super();
    this.config = config;
    this.signalingState = "stable";
    this.connectionState = "new";
    this.transceivers = [];
    this.localDescription = null;
    this.ufrag = 1;
    this.restart = false;
    this.events = [];
    pcs.push(this);
  }
  addTransceiver(trackOrKind, init) {
    const track = typeof trackOrKind === "string" ? null : trackOrKind;
    const t = {
      kind: track ? track.kind : trackOrKind,
      mid: null,
      direction: init.direction,
      streams: init.streams || [],
      sendEncodings: init.sendEncodings,
      sender: {
        track,
        trackId: track ? track.id : `sender-${++ids}`,
        replaceTrack: async (x) => {
          t.sender.track = x;
        },
      },
    };
    this.transceivers.push(t);
    this.changed();
    return t;
  }
  removeTrack(sender) {
    const t = this.transceivers.find((x) => x.sender === sender);
    t.sender.track = null;
    t.direction = t.direction === "sendrecv" ? "recvonly" : "inactive";
    this.changed();
  }
  restartIce() {
    this.restart = true;
    this.changed();
  }
  // changed is the browser's negotiation-needed flag: set by a change, cleared by an offer
  // that carries it; negotiationneeded fires once per change, and again when the
  // negotiation becomes stable with the flag still set (JSEP, WebRTC 1.0 §4.7.3).
  changed() {
    this.dirty = true;
    this.maybeFire();
  }
  maybeFire() {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      if (this.dirty && this.signalingState === "stable") this.dispatchEvent(new Event("negotiationneeded"));
    }, 0);
  }
  sdp(type) {
    const lines = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0"];
    for (const t of this.transceivers) {
      lines.push(`m=${t.kind} 9 UDP/TLS/RTP/SAVPF 96`, `a=mid:${t.mid}`, `a=ice-ufrag:u${this.ufrag}`);
      let dir = t.direction;
      if (type === "answer" && t.remote) dir = "recvonly";
      lines.push(`a=${dir}`);
      if ((dir === "sendonly" || dir === "sendrecv") && t.streams[0]) lines.push(`a=msid:${t.streams[0].id} ${t.sender.trackId}`);
    }
    return lines.join("\r\n") + "\r\n";
  }
  async setLocalDescription(d) {
    await null;
    if (d && d.type === "rollback") {
      assert.equal(this.signalingState, "have-local-offer", "rollback without a local offer");
      this.signalingState = "stable";
      this.events.push("rollback");
      this.dirty = this.dirty || this.dirtyBefore;
      this.maybeFire();
      return;
    }
    if (this.signalingState === "stable") {
      this.transceivers.forEach((t, i) => {
        if (t.mid === null) t.mid = String(i);
      });
      if (this.restart) {
        this.ufrag++;
        this.restart = false;
        this.events.push("ice-restart");
      }
      this.localDescription = { type: "offer", sdp: this.sdp("offer") };
      this.dirtyBefore = this.dirty;
      this.dirty = false;
      this.signalingState = "have-local-offer";
      this.events.push("local-offer");
    } else if (this.signalingState === "have-remote-offer") {
      this.localDescription = { type: "answer", sdp: this.sdp("answer") };
      this.signalingState = "stable";
      this.events.push("local-answer");
      this.maybeFire();
    } else {
      throw new Error(`setLocalDescription in ${this.signalingState}`);
    }
  }
  async setRemoteDescription(d) {
    await null;
    if (d.type === "answer") {
      assert.equal(this.signalingState, "have-local-offer", "an answer without an offer");
      this.signalingState = "stable";
      this.events.push("remote-answer");
      this.maybeFire();
      return;
    }
    assert.equal(this.signalingState, "stable", "a remote offer while not stable");
    this.signalingState = "have-remote-offer";
    this.events.push("remote-offer");
    // New sendonly sections of the server: a receiving transceiver and a track event each.
    for (const s of d.sdp.split("m=").slice(1)) {
      const mid = /a=mid:(\S+)/.exec(s)[1];
      const msid = /a=msid:(\S+) (\S+)/.exec(s);
      if (!/a=sendonly/.test(s) || this.transceivers.some((t) => t.mid === mid)) continue;
      const track = new FakeTrack(s.startsWith("audio") ? "audio" : "video");
      const t = { kind: track.kind, mid, direction: "recvonly", remote: true, streams: [], sender: { track: null } };
      this.transceivers.push(t);
      const ev = new Event("track");
      ev.track = track;
      ev.streams = [new MediaStream([track])];
      ev.streams[0].id = msid[1];
      ev.transceiver = t;
      this.dispatchEvent(ev);
    }
  }
  close() {
    this.signalingState = "closed";
  }
}
globalThis.RTCPeerConnection = FakePC;

// FakeXMPP records the IQs the session sends; the test answers them.
class FakeXMPP {
  constructor() {
    this.listeners = new Set();
    this.iqs = [];
    this.waiters = [];
    this.iqCaller = {
      request: (stanza) =>
        new Promise((resolve, reject) => {
          const iq = { stanza, child: stanza.children[0], resolve, reject };
          this.iqs.push(iq);
          this.waiters.splice(0).forEach((w) => w());
        }),
    };
  }
  on(name, fn) {
    if (name === "stanza") this.listeners.add(fn);
  }
  removeListener(name, fn) {
    this.listeners.delete(fn);
  }
  // next waits for the next IQ not yet taken whose payload is called name.
  async next(name) {
    for (let i = 0; i < 100; i++) {
      const k = this.iqs.findIndex((q) => !q.taken && q.child.name === name);
      if (k >= 0) {
        this.iqs[k].taken = true;
        return this.iqs[k];
      }
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 10);
      });
    }
    throw new Error(`no ${name} IQ; sent: ${this.iqs.map((q) => q.child.name + (q.child.attrs.type ? ":" + q.child.attrs.type : "")).join(", ")}`);
  }
  // pending lists the IQs not yet taken, as name[:type].
  pending() {
    return this.iqs.filter((q) => !q.taken).map((q) => q.child.name + (q.child.attrs.type ? ":" + q.child.attrs.type : ""));
  }
  result(iq, child) {
    iq.resolve(xml("iq", { type: "result" }, child || undefined));
  }
  deliver(child) {
    const m = xml("message", { from: SPACE, to: "ada@example.com/web" }, child);
    for (const fn of this.listeners) fn(m);
  }
}

const SPACE = "4f1c@cb1.example.com";
const NS = "urn:confab:media:1";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

function glareError() {
  const el = xml("error", { type: "wait" }, xml("unexpected-request", { xmlns: STANZAS }), xml("glare", { xmlns: NS }));
  const err = new Error("unexpected-request");
  err.condition = "unexpected-request";
  err.element = el;
  return err;
}

function serverSDP(type, sections) {
  const lines = ["v=0", "o=- 9 9 IN IP4 127.0.0.1", "s=-", "t=0 0"];
  for (const s of sections) {
    lines.push(`m=${s.kind} 9 UDP/TLS/RTP/SAVPF 96`, `a=mid:${s.mid}`, `a=${s.dir}`);
    if (s.msid) lines.push(`a=msid:${s.msid}`);
  }
  return lines.join("\r\n") + "\r\n";
}

const settle = () => new Promise((r) => setTimeout(r, 5));

const { MediaSession } = await import("../src/media.js");

// started returns a session whose first offer was sent, answered and applied.
async function started(handlers = {}) {
  const x = new FakeXMPP();
  const m = new MediaSession(x, SPACE, handlers);
  const mic = new FakeTrack("audio");
  const cam = new FakeTrack("video");
  const done = m.start({ audio: mic, video: cam, sendAudio: true, sendVideo: true, encodings: null });
  x.result(await x.next("session"), xml("session", { xmlns: NS, leg: "leg-1" }));
  await done;
  const first = await x.next("description");
  assert.equal(first.child.attrs.type, "offer");
  x.result(first);
  x.deliver(xml("description", { xmlns: NS, type: "answer" }, serverSDP("answer", [])));
  await settle();
  const pc = pcs[pcs.length - 1];
  assert.equal(pc.signalingState, "stable");
  return { x, m, pc };
}

// ---- tests --------------------------------------------------------------------------------

test("the first offer sends camera and microphone; the server's offer is answered and its tracks announced", async () => {
  const got = [];
  const { x, pc } = await started({ onTrack: (t) => got.push(t) });
  assert.deepEqual(
    pc.transceivers.map((t) => [t.kind, t.direction]),
    [
      ["audio", "sendonly"],
      ["video", "sendonly"],
    ],
  );
  x.deliver(xml("track", { xmlns: NS, id: "t-13", stream: "m-12", participant: "bob", kind: "video", source: "camera", state: "published" }));
  x.deliver(
    xml(
      "description",
      { xmlns: NS, type: "offer" },
      serverSDP("offer", [
        { kind: "audio", mid: "0", dir: "recvonly" },
        { kind: "video", mid: "1", dir: "recvonly" },
        { kind: "video", mid: "2", dir: "sendonly", msid: "m-12 t-13" },
      ]),
    ),
  );
  const answer = await x.next("description");
  assert.equal(answer.child.attrs.type, "answer");
  x.result(answer);
  await settle();
  assert.deepEqual(pc.events, ["local-offer", "remote-answer", "remote-offer", "local-answer"]);
  assert.equal(got.length, 1);
  assert.deepEqual([got[0].id, got[0].participant, got[0].source], ["t-13", "bob", "camera"]);
});

for (const order of ["error first", "server offer first"]) {
  test(`glare (${order}): the browser rolls back, answers the server's offer, then offers again`, async () => {
    const { x, m, pc } = await started();
    // The browser offers (a screen share) while the server offers too.
    m.startScreen(new FakeTrack("video"), new MediaStream());
    const crossed = await x.next("description");
    assert.equal(crossed.child.attrs.type, "offer");
    const serverOffer = xml(
      "description",
      { xmlns: NS, type: "offer" },
      serverSDP("offer", [
        { kind: "audio", mid: "0", dir: "recvonly" },
        { kind: "video", mid: "1", dir: "recvonly" },
        { kind: "video", mid: "3", dir: "sendonly", msid: "m-20 t-21" },
      ]),
    );
    if (order === "error first") {
      crossed.reject(glareError());
      await settle();
      assert.equal(pc.signalingState, "stable", "rolled back");
      assert.deepEqual(x.pending(), [], "no new offer before the server's offer is answered");
      x.deliver(serverOffer);
    } else {
      x.deliver(serverOffer);
      await settle();
      crossed.reject(glareError());
    }
    const answer = await x.next("description");
    assert.equal(answer.child.attrs.type, "answer", "the server's offer is answered first");
    x.result(answer);
    const again = await x.next("description");
    assert.equal(again.child.attrs.type, "offer", "then the browser offers again");
    assert.match(again.child.text(), /a=msid:screen-stream-\d+ /, "the screen share's stream id is marked");
    x.result(again);
    x.deliver(xml("description", { xmlns: NS, type: "answer" }, serverSDP("answer", [])));
    await settle();
    assert.equal(pc.signalingState, "stable");
    assert.deepEqual(pc.events.slice(2), ["local-offer", "rollback", "remote-offer", "local-answer", "local-offer", "remote-answer"]);
  });
}

test("mute is told once the first offer is taken; a camera off from the start is muted at once", async () => {
  const x = new FakeXMPP();
  const m = new MediaSession(x, SPACE, {});
  m.muted.video = true;
  const done = m.start({ audio: new FakeTrack("audio"), video: null, sendAudio: true, sendVideo: true, encodings: null });
  x.result(await x.next("session"), xml("session", { xmlns: NS, leg: "leg-1" }));
  await done;
  const offer = await x.next("description");
  assert.deepEqual(x.pending(), [], "nothing before the first offer is taken");
  x.result(offer);
  const mute = await x.next("mute");
  assert.deepEqual([mute.child.attrs.kind, mute.child.attrs.muted], ["video", "true"]);
  m.setMuted("audio", true);
  const mute2 = await x.next("mute");
  assert.deepEqual([mute2.child.attrs.kind, mute2.child.attrs.muted], ["audio", "true"]);
});

test("after <ended/> the session starts over: a new connection and a first offer", async () => {
  const states = [];
  const ended = [];
  const { x, pc } = await started({ onState: (s) => states.push(s), onTrackEnded: (t) => ended.push(t.id) });
  x.deliver(xml("track", { xmlns: NS, id: "t-5", stream: "m-4", participant: "bob", kind: "audio", source: "microphone", state: "published" }));
  x.deliver(xml("ended", { xmlns: NS, reason: "connection" }));
  const offer = await x.next("description");
  assert.equal(offer.child.attrs.type, "offer");
  const fresh = pcs[pcs.length - 1];
  assert.notEqual(fresh, pc, "a new RTCPeerConnection");
  assert.equal(pc.signalingState, "closed", "the old one closed");
  assert.ok(states.includes("reconnecting"), `states ${states}`);
  assert.deepEqual(ended, ["t-5"], "the old tracks end");
  x.result(offer);
});

test("an ICE restart offers new credentials", async () => {
  const { x, m, pc } = await started();
  m.restartIce();
  const offer = await x.next("description");
  assert.match(offer.child.text(), /a=ice-ufrag:u2/);
  assert.ok(pc.events.includes("ice-restart"));
});
