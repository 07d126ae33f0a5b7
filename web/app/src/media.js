// The media signalling of docs/protocol.md, namespace urn:confab:media:1: one
// RTCPeerConnection to the Call Bridge's SFU, negotiated over the participant's XMPP session
// with the space's JID.
//
// Negotiation (protocol.md, Media > Negotiation): the browser makes the first offer; the
// SFU is ICE-lite and puts all its candidates in its descriptions; it offers whenever what
// the browser receives changes; the browser offers again to add or remove a track (a screen
// share) or to restart ICE. The browser is the polite peer: an offer of its own that
// crossed the server's is refused with <glare/>, and the browser rolls it back, answers the
// server's offer and offers again. Every change of the signalling state runs in one queue,
// one step at a time, so a server description never meets a half-made offer.
import { xml, jid as parseJID } from "@xmpp/client";

import { markScreen, mediaSections } from "./sdp.js";
import { MSG, UserError } from "./messages.js";
import { Gathered, ICEErrors, collectReport, reportElement } from "./report.js";

export const NS_MEDIA = "urn:confab:media:1";
const IQ_TIMEOUT = 15000;
// How long an ICE connection may stay "disconnected" before the browser restarts ICE.
const DISCONNECTED_GRACE_MS = 4000;
// How long the browser waits for the server's offer after a glare before offering again.
const GLARE_WAIT_MS = 5000;
// Fresh connections after the SFU ended ours (<ended/>), before giving up.
const MAX_RECONNECTS = 4;
// Reports of the connection to the server (<report/>): at most this many per connection,
// each gathering what changed over REPORT_DELAY_MS.
const MAX_REPORTS = 20;
const REPORT_DELAY_MS = 400;
// The causes of an <ended/> that a new connection from the same network cannot cure: the
// person is told the server's words at once instead of waiting for retries.
const LASTING_CAUSES = new Set([
  "udp-blocked-no-turn",
  "udp-blocked-turn-failed",
  "turn-unreachable",
  "turn-credentials",
  "turn-refused",
  "turn-no-relay",
  "relay-not-through",
  "answers-lost",
  "dtls-failed",
  "no-candidates",
]);

// The camera's simulcast layers, as Chrome's sendEncodings: quarter, half and full size.
// The SFU forwards each subscriber the one that fits the size it shows the video at.
const SIMULCAST = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

// simulcastFor returns the send encodings for a camera of that size: three layers when the
// camera is at least 640 pixels on its long side (smaller layers would be too small to be
// worth sending), else one. An unknown size (the camera is off) counts as large: the app
// asks cameras for 1280x720.
export function simulcastFor(width, height) {
  if (!width || !height) return SIMULCAST.map((e) => ({ ...e }));
  return Math.max(width, height) >= 640 ? SIMULCAST.map((e) => ({ ...e })) : null;
}

function isGlare(err) {
  if (!err || err.condition !== "unexpected-request") return false;
  const el = err.element;
  return !!(el && el.getChild("glare", NS_MEDIA));
}

// MediaSession is one participant's media in one meeting. Handlers (all optional):
//   onTrack({id, participant, kind, source, track, stream})   a received track is playable
//   onTrackEnded({id, participant, kind, source})             it ended
//   onMute({participant, kind, self, admin})                  someone's mute state
//   onSpeaker(participantId)                                  the active speaker
//   onLayer(trackId, rid)                                     the simulcast layer received
//   onState(state, message)                                   connecting | connected |
//                                                             reconnecting | failed | closed
//   onError(message)                                          a request failed (in words)
export class MediaSession {
  constructor(xmpp, spaceJid, handlers, log = () => {}) {
    this.xmpp = xmpp;
    this.space = parseJID(spaceJid).bare().toString();
    this.h = handlers;
    this.log = log;
    this.pc = null;
    this.generation = 0; // one per RTCPeerConnection: callbacks of an old one are ignored
    this.iceServers = [];
    this.leg = "";
    this.tracks = new Map(); // server track id → {id, stream, participant, kind, source, codec}
    this.midTrack = new Map(); // mid of a received m-section → server track id
    this.received = new Map(); // server track id → {track, stream}
    this.announced = new Set(); // server track ids given to onTrack
    this.queue = Promise.resolve();
    this.pendingOffer = false; // an offer is needed once the negotiation is stable
    this.awaitingServerOffer = false; // after a glare: the server's offer is on its way
    this.answered = false; // the current connection's first offer was answered
    this.closed = false;
    this.state = "new";
    this.reconnects = 0;
    this.disconnectTimer = null;
    this.iceErrors = new ICEErrors();
    this.gathered = new Gathered();
    this.reports = 0;
    this.reportTimer = null;
    // What the browser sends: one MediaStream id for camera and microphone (lip sync), the
    // transceivers, and the screen shares' transceivers (their mids get the "screen" mark).
    this.localStream = new MediaStream();
    this.send = { audio: null, video: null }; // tracks being sent (null: none)
    this.can = { audio: false, video: false }; // whether a transceiver sends this kind
    this.encodings = null;
    this.trx = { audio: null, video: null };
    this.screen = null; // {transceiver, track, stream}
    this.screenMids = new Set();
    this.muted = { audio: false, video: false }; // what the server was told
    this.onStanza = (s) => this.handle(s);
  }

  // start asks for the ICE servers, opens the connection and makes the first offer. audio
  // and video are the tracks to send (null: none now); sendAudio and sendVideo say whether a
  // device of that kind may send later (a camera turned off before joining); encodings are
  // the camera's simulcast layers (simulcastFor).
  async start({ audio, video, sendAudio, sendVideo, encodings }) {
    this.send.audio = audio || null;
    this.send.video = video || null;
    this.can.audio = !!(sendAudio || audio);
    this.can.video = !!(sendVideo || video);
    this.encodings = encodings || null;
    this.xmpp.on("stanza", this.onStanza);
    try {
      const res = await this.iq("get", xml("session", { xmlns: NS_MEDIA }));
      this.leg = (res && res.attrs.leg) || "";
      this.iceServers = (res ? res.getChildren("ice-server") : []).map((s) => ({
        urls: s.getChildren("url").map((u) => u.text()),
        username: s.attrs.username || undefined,
        credential: s.attrs.credential || undefined,
      }));
    } catch (err) {
      this.xmpp.removeListener("stanza", this.onStanza);
      this.closed = true;
      throw new UserError(MSG.mediaUnavailable, err);
    }
    this.setState("connecting");
    this.enqueue(() => this.connect());
  }

  setState(state, message = "") {
    if (this.state === state && !message) return;
    this.state = state;
    this.h.onState?.(state, message);
  }

  enqueue(step) {
    const run = this.queue.then(() => (this.closed ? undefined : step()));
    this.queue = run.catch((err) => {
      this.log("media step failed:", err);
      if (!this.closed) this.h.onError?.(err && err.userMessage ? err.userMessage : MSG.mediaFailed);
    });
    return run;
  }

  iq(type, child) {
    return this.xmpp.iqCaller.request(xml("iq", { type, to: this.space }, child), IQ_TIMEOUT).then((r) =>
      r.getChild(child.name, NS_MEDIA),
    );
  }

  // connect makes a new RTCPeerConnection with the browser's transceivers; its
  // negotiationneeded event makes the first offer.
  connect() {
    this.closePC();
    const gen = ++this.generation;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.pc = pc;
    this.iceErrors = new ICEErrors();
    this.gathered = new Gathered();
    this.reports = 0;
    this.answered = false;
    this.pendingOffer = false;
    this.awaitingServerOffer = false;
    this.screenMids.clear();
    const live = () => gen === this.generation && !this.closed;
    pc.addEventListener("negotiationneeded", () => {
      if (live()) this.enqueue(() => this.offer(gen));
    });
    pc.addEventListener("icecandidate", (ev) => {
      if (!live()) return;
      this.gathered.add(ev);
      const c = ev.candidate;
      const el = c
        ? xml("candidate", { xmlns: NS_MEDIA, mid: c.sdpMid ?? "", mline: String(c.sdpMLineIndex ?? 0) }, c.candidate)
        : xml("candidate", { xmlns: NS_MEDIA });
      this.iq("set", el).catch((err) => this.log("candidate refused:", err && err.message));
    });
    pc.addEventListener("track", (ev) => {
      if (!live()) return;
      const mid = ev.transceiver && ev.transceiver.mid;
      const id = this.midTrack.get(mid) || ev.track.id;
      this.received.set(id, { track: ev.track, stream: ev.streams[0] || new MediaStream([ev.track]) });
      this.announce(id);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (live()) this.connectionChanged();
    });
    // What the server's media ladder needs from this side: failed STUN/TURN servers, the
    // end of gathering, each ICE state.
    pc.addEventListener("icecandidateerror", (ev) => {
      if (live() && this.iceErrors.add(ev)) this.scheduleReport(gen);
    });
    pc.addEventListener("icegatheringstatechange", () => {
      if (live() && pc.iceGatheringState === "complete") this.scheduleReport(gen);
    });
    pc.addEventListener("iceconnectionstatechange", () => {
      if (live()) this.scheduleReport(gen);
    });
    // The camera and the microphone: sendonly when the person has the device (a track now,
    // or one turned off for the moment), recvonly for a participant who only receives. At
    // least one audio or video section is needed for the SFU to accept the offer.
    const init = (kind) => {
      const track = this.send[kind];
      const opts = { direction: this.can[kind] ? "sendonly" : "recvonly", streams: [this.localStream] };
      if (kind === "video" && this.can.video && this.encodings) opts.sendEncodings = this.encodings;
      return pc.addTransceiver(track || kind, opts);
    };
    this.trx.audio = init("audio");
    this.trx.video = init("video");
    if (this.screen) {
      // A screen share survives a fresh connection.
      this.screen.transceiver = pc.addTransceiver(this.screen.track, { direction: "sendonly", streams: [this.screen.stream] });
    }
  }

  // scheduleReport sends the server a <report/> of this connection shortly.
  scheduleReport(gen) {
    if (this.reportTimer || this.reports >= MAX_REPORTS) return;
    this.reportTimer = setTimeout(async () => {
      this.reportTimer = null;
      const pc = this.pc;
      if (!pc || gen !== this.generation || this.closed) return;
      this.reports++;
      const r = await collectReport(pc, this.iceErrors, this.gathered);
      if (gen !== this.generation || this.closed) return;
      this.iq("set", reportElement(NS_MEDIA, r)).catch((err) => this.log("report refused:", err && err.message));
    }, REPORT_DELAY_MS);
  }

  closePC() {
    clearTimeout(this.disconnectTimer);
    this.disconnectTimer = null;
    clearTimeout(this.reportTimer);
    this.reportTimer = null;
    if (!this.pc) return;
    try {
      this.pc.close();
    } catch {
      // already closed
    }
    this.pc = null;
    for (const id of [...this.tracks.keys()]) this.ended(id);
    this.midTrack.clear();
    this.received.clear();
    this.announced.clear();
  }

  // offer sends a description of the browser's current tracks, when the negotiation is
  // stable; otherwise it is made once it is (pendingOffer).
  async offer(gen) {
    const pc = this.pc;
    if (!pc || gen !== this.generation) return;
    if (this.awaitingServerOffer) {
      // After a glare: the server's offer is answered first (remote), then this offer.
      this.pendingOffer = true;
      return;
    }
    if (pc.signalingState !== "stable") {
      // Our own offer is outstanding: the browser fires negotiationneeded again once the
      // negotiation is stable, if what changed since is not in that offer.
      return;
    }
    this.pendingOffer = false;
    await pc.setLocalDescription();
    if (gen !== this.generation) return;
    this.noteScreenMids();
    const sdp = markScreen(pc.localDescription.sdp, this.screenMids);
    try {
      await this.iq("set", xml("description", { xmlns: NS_MEDIA, type: "offer" }, sdp));
    } catch (err) {
      if (gen !== this.generation) return;
      if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
      if (isGlare(err)) {
        // The server's offer crossed ours: it arrives next; answer it, then offer again.
        this.log("glare: rolled back; answering the server's offer first");
        this.awaitingServerOffer = true;
        this.pendingOffer = true;
        // The server's offer is on its way; should it never come, offer again anyway.
        setTimeout(() => {
          if (gen !== this.generation || !this.awaitingServerOffer) return;
          this.awaitingServerOffer = false;
          this.enqueue(() => this.offer(gen));
        }, GLARE_WAIT_MS);
        return;
      }
      if (err && err.condition === "conflict") {
        // The server is still taking an earlier first offer: try once more shortly.
        this.pendingOffer = true;
        setTimeout(() => this.enqueue(() => this.offer(gen)), 500);
        return;
      }
      throw new UserError(err && err.condition === "not-acceptable" && this.answered === false ? MSG.mediaUnavailable : MSG.mediaFailed, err);
    }
    if (!this.answered) {
      // The first offer taken: tell the server what is muted from the start.
      this.answered = true;
      for (const kind of ["audio", "video"]) {
        if (this.muted[kind]) this.tellMute(kind, true);
      }
    }
  }

  // remote applies the server's answer or offer (from a <description/> message).
  async remote(gen, type, sdp) {
    const pc = this.pc;
    if (!pc || gen !== this.generation) return;
    this.learnMids(sdp);
    if (type === "answer") {
      if (pc.signalingState !== "have-local-offer") {
        this.log("an answer with no offer of ours outstanding: ignored");
        return;
      }
      await pc.setRemoteDescription({ type: "answer", sdp });
    } else if (type === "offer") {
      if (pc.signalingState === "have-local-offer") {
        await pc.setLocalDescription({ type: "rollback" }); // polite: the server's offer wins
        this.pendingOffer = true;
      }
      await pc.setRemoteDescription({ type: "offer", sdp });
      await pc.setLocalDescription();
      if (gen !== this.generation) return;
      this.awaitingServerOffer = false;
      const answer = markScreen(pc.localDescription.sdp, this.screenMids);
      await this.iq("set", xml("description", { xmlns: NS_MEDIA, type: "answer" }, answer));
    } else {
      return;
    }
    if (this.pendingOffer && pc.signalingState === "stable") this.enqueue(() => this.offer(gen));
  }

  learnMids(sdp) {
    for (const s of mediaSections(sdp)) {
      if (s.mid && s.track && (s.direction === "sendonly" || s.direction === "sendrecv")) this.midTrack.set(s.mid, s.track);
    }
  }

  noteScreenMids() {
    if (this.screen && this.screen.transceiver && this.screen.transceiver.mid) this.screenMids.add(this.screen.transceiver.mid);
  }

  connectionChanged() {
    const st = this.pc.connectionState;
    this.log("media connection:", st);
    clearTimeout(this.disconnectTimer);
    this.disconnectTimer = null;
    switch (st) {
      case "connected":
        this.reconnects = 0;
        this.setState("connected");
        break;
      case "disconnected":
        this.setState("reconnecting", MSG.mediaReconnecting);
        this.disconnectTimer = setTimeout(() => this.restartIce(), DISCONNECTED_GRACE_MS);
        break;
      case "failed":
        this.setState("reconnecting", MSG.mediaReconnecting);
        this.restartIce();
        break;
    }
  }

  // restartIce offers new ICE credentials (after a network change or a lost connection);
  // the SFU keeps the participant and its tracks. The browser's negotiationneeded event
  // makes the offer, as soon as the negotiation is stable.
  restartIce() {
    if (this.closed || !this.pc || !this.answered) return;
    this.log("restarting ICE");
    this.pc.restartIce();
  }

  // resumed is called when the XMPP session came back after a drop: the media connection
  // may have broken meanwhile.
  resumed() {
    if (this.closed || !this.pc) return;
    const st = this.pc.connectionState;
    if (st !== "connected" && st !== "connecting" && st !== "new") {
      this.setState("reconnecting", MSG.mediaReconnecting);
      this.restartIce();
    }
  }

  // reconnect starts over with a new connection and a first offer, after the SFU ended the
  // old one (<ended/>): the meeting goes on, only the media restarts. When the server says
  // why and a new connection from this network cannot help (UDP blocked, no relay), the
  // person is told the server's words at once.
  reconnect(cause = "", text = "") {
    if (this.closed) return;
    if (text && LASTING_CAUSES.has(cause)) {
      this.closePC();
      this.failure = { cause, text };
      this.setState("failed", text);
      return;
    }
    if (this.reconnects >= MAX_RECONNECTS) {
      this.closePC();
      this.failure = { cause, text };
      this.setState("failed", text || MSG.mediaLost);
      return;
    }
    this.reconnects++;
    this.setState("reconnecting", MSG.mediaReconnecting);
    this.connect();
  }

  handle(stanza) {
    if (this.closed || !stanza.is("message") || stanza.attrs.type === "error") return;
    let from;
    try {
      from = parseJID(stanza.attrs.from || "");
    } catch {
      return;
    }
    if (from.bare().toString() !== this.space || from.resource) return;
    for (const el of stanza.getChildElements()) {
      if (el.attrs.xmlns === NS_MEDIA) this.event(el);
    }
  }

  event(el) {
    const a = el.attrs;
    switch (el.name) {
      case "description": {
        const gen = this.generation;
        const sdp = el.text();
        this.enqueue(() => this.remote(gen, a.type, sdp));
        break;
      }
      case "track":
        if (a.state === "ended") {
          this.ended(a.id);
        } else {
          this.tracks.set(a.id, {
            id: a.id,
            stream: a.stream || "",
            participant: a.participant || "",
            kind: a.kind === "video" ? "video" : "audio",
            source: a.source || (a.kind === "video" ? "camera" : "microphone"),
            codec: a.codec || "",
          });
          this.announce(a.id);
        }
        break;
      case "mute":
        this.h.onMute?.({ participant: a.participant || "", kind: a.kind, self: a.self === "true", admin: a.admin === "true" });
        break;
      case "speaker":
        this.h.onSpeaker?.(a.participant || "");
        break;
      case "layer":
        this.h.onLayer?.(a.track, a.rid);
        break;
      case "connection":
        this.log("the SFU sees the connection", a.state);
        break;
      case "ended":
        this.log("the SFU ended the media:", a.reason, a.cause || "", a.text || "");
        this.enqueue(() => this.reconnect(a.cause || "", a.text || ""));
        break;
    }
  }

  announce(id) {
    const info = this.tracks.get(id);
    const r = this.received.get(id);
    if (!info || !r || this.announced.has(id)) return;
    this.announced.add(id);
    this.h.onTrack?.({ ...info, track: r.track, stream: r.stream });
  }

  ended(id) {
    const info = this.tracks.get(id);
    this.tracks.delete(id);
    this.received.delete(id);
    this.announced.delete(id);
    if (info) this.h.onTrackEnded?.(info);
  }

  // setTrack sends track (or nothing, for null) as the camera or the microphone. A kind the
  // connection does not send yet gets its transceiver turned to sendonly, which needs an
  // offer (negotiationneeded).
  async setTrack(kind, track) {
    this.send[kind] = track || null;
    const t = this.trx[kind];
    if (!t || !this.pc) return;
    if (track && t.direction !== "sendonly" && t.direction !== "sendrecv") {
      this.can[kind] = true;
      t.direction = "sendonly";
    }
    await t.sender.replaceTrack(track || null);
  }

  // setMuted tells the server that the person muted (or unmuted) a kind; everyone sees it.
  setMuted(kind, muted) {
    if (this.muted[kind] === muted) return;
    this.muted[kind] = muted;
    if (this.answered) this.tellMute(kind, muted);
  }

  tellMute(kind, muted) {
    this.iq("set", xml("mute", { xmlns: NS_MEDIA, kind, muted: muted ? "true" : "false" })).catch((err) =>
      this.log("mute refused:", err && err.message),
    );
  }

  // startScreen sends a screen share: a second video track, whose stream id the server
  // sees beginning with "screen".
  startScreen(track, stream) {
    if (this.screen) this.stopScreen();
    this.screen = { track, stream, transceiver: null };
    if (this.pc) {
      this.screen.transceiver = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    }
  }

  stopScreen() {
    const s = this.screen;
    this.screen = null;
    if (!s) return;
    if (s.transceiver && this.pc && this.pc.signalingState !== "closed") {
      try {
        this.pc.removeTrack(s.transceiver.sender);
      } catch (err) {
        this.log("remove screen track:", err && err.message);
      }
    }
  }

  // view tells the SFU the size a received video is shown at (CSS pixels times the
  // device's pixel ratio), so that it forwards the simulcast layer that fits.
  view(trackId, width, height) {
    if (!this.answered || !this.tracks.has(trackId)) return;
    this.iq("set", xml("view", { xmlns: NS_MEDIA, track: trackId, width: String(width), height: String(height) })).catch((err) =>
      this.log("view refused:", err && err.message),
    );
  }

  // stats summarises what the browser receives and sends, for the connection indicator and
  // for tests: per received track its participant, source and counters.
  async stats() {
    if (!this.pc) return null;
    const report = await this.pc.getStats();
    const out = { rtt: null, inbound: [], outbound: [], lost: 0, received: 0 };
    report.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && typeof s.currentRoundTripTime === "number") {
        out.rtt = s.currentRoundTripTime;
      } else if (s.type === "inbound-rtp") {
        const id = this.midTrack.get(s.mid) || "";
        const info = this.tracks.get(id) || {};
        out.lost += s.packetsLost || 0;
        out.received += s.packetsReceived || 0;
        out.inbound.push({
          track: id,
          participant: info.participant || "",
          source: info.source || "",
          kind: s.kind,
          packetsReceived: s.packetsReceived || 0,
          packetsLost: s.packetsLost || 0,
          framesDecoded: s.framesDecoded || 0,
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
          totalAudioEnergy: s.totalAudioEnergy || 0,
          audioLevel: s.audioLevel || 0,
        });
      } else if (s.type === "outbound-rtp") {
        out.outbound.push({
          kind: s.kind,
          mid: s.mid || "",
          rid: s.rid || "",
          packetsSent: s.packetsSent || 0,
          framesEncoded: s.framesEncoded || 0,
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
          screen: !!(s.mid && this.screenMids.has(s.mid)),
        });
      }
    });
    return out;
  }

  // close ends the media: the connection closed, the server's queue ignored. Leaving the
  // meeting (the unavailable presence) ends the media on the server.
  close() {
    if (this.closed) return;
    this.closed = true;
    this.xmpp.removeListener("stanza", this.onStanza);
    this.closePC();
    this.screen = null;
    this.setState("closed");
  }

  // hangup stops the media but stays in the meeting (chat only).
  async hangup() {
    const was = this.answered;
    this.close();
    if (was) await this.iq("set", xml("hangup", { xmlns: NS_MEDIA })).catch(() => {});
  }
}
