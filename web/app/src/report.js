// The browser's own view of a media connection, for the server's media ladder
// (docs/protocol.md, Media > Report): the candidates it gathered (with the TURN URL each
// relay came from and how it reaches that TURN server), the STUN and TURN servers that
// failed (icecandidateerror), the selected pair, the states, and how many checks and
// packets went each way. The same object is sent as <report/> in a meeting and as JSON by
// the connection test.
import { xml } from "@xmpp/client";

// ICEErrors collects a connection's icecandidateerror events, once per URL and code.
export class ICEErrors {
  constructor() {
    this.list = [];
    this.seen = new Set();
  }

  add(ev) {
    const url = ev.url || "";
    const code = ev.errorCode || 0;
    const key = url + " " + code;
    if (this.seen.has(key) || this.list.length >= 32) return false;
    this.seen.add(key);
    this.list.push({ url, code, text: String(ev.errorText || "").slice(0, 200) });
    return true;
  }
}

// Gathered keeps the candidates a connection gathered, from its icecandidate events: the
// statistics list only those in candidate pairs, which leaves out relays ICE did not pair.
export class Gathered {
  constructor() {
    this.list = [];
    this.seen = new Set();
  }

  add(ev) {
    const c = ev.candidate;
    if (!c || !c.candidate || this.list.length >= 64) return;
    const address = c.address ? (c.address.includes(":") ? `[${c.address}]` : c.address) + ":" + c.port : "";
    const key = `${c.type} ${c.protocol} ${address}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push({ type: c.type || "", protocol: c.protocol || "", relayProtocol: c.relayProtocol || "", address, url: c.url || ev.url || "" });
  }
}

// collectReport reads pc's statistics into a report, with the candidates gathered.
export async function collectReport(pc, errors, gathered) {
  const r = {
    gathering: pc.iceGatheringState,
    ice: pc.iceConnectionState,
    connection: pc.connectionState,
    dtls: "",
    candidates: [],
    errors: errors ? errors.list.slice() : [],
    checksSent: 0,
    checksAnswered: 0,
    packetsSent: 0,
    packetsReceived: 0,
  };
  let stats;
  try {
    stats = await pc.getStats();
  } catch {
    return r;
  }
  const local = new Map();
  const remote = new Map();
  let selectedId = "";
  stats.forEach((s) => {
    if (s.type === "local-candidate") local.set(s.id, s);
    else if (s.type === "remote-candidate") remote.set(s.id, s);
    else if (s.type === "transport") {
      if (s.dtlsState) r.dtls = s.dtlsState;
      if (s.selectedCandidatePairId) selectedId = s.selectedCandidatePairId;
    } else if (s.type === "outbound-rtp") r.packetsSent += s.packetsSent || 0;
    else if (s.type === "inbound-rtp") r.packetsReceived += s.packetsReceived || 0;
  });
  let selected = null;
  stats.forEach((s) => {
    if (s.type !== "candidate-pair") return;
    r.checksSent += s.requestsSent || 0;
    r.checksAnswered += s.responsesReceived || 0;
    if (s.id === selectedId || (!selectedId && s.nominated && s.state === "succeeded")) selected = s;
  });
  const seen = new Set();
  for (const c of gathered ? gathered.list : []) {
    seen.add(`${c.type} ${c.protocol} ${c.address}`);
    r.candidates.push({ ...c });
  }
  for (const c of local.values()) {
    if (r.candidates.length >= 64) break;
    const address = c.address ? (c.address.includes(":") ? `[${c.address}]` : c.address) + ":" + c.port : "";
    if (seen.has(`${c.candidateType} ${c.protocol} ${address}`)) continue;
    r.candidates.push({
      type: c.candidateType || "",
      protocol: c.protocol || "",
      relayProtocol: c.relayProtocol || "",
      address: c.address ? (c.address.includes(":") ? `[${c.address}]` : c.address) + ":" + c.port : "",
      url: c.url || "",
    });
  }
  if (selected) {
    const l = local.get(selected.localCandidateId) || {};
    const rm = remote.get(selected.remoteCandidateId) || {};
    r.selected = {
      localType: l.candidateType || "",
      localProtocol: l.protocol || "",
      relayProtocol: l.relayProtocol || "",
      url: l.url || "",
      remoteType: rm.candidateType || "",
      remoteProtocol: rm.protocol || "",
      remoteAddress: rm.address ? rm.address + ":" + rm.port : "",
    };
  }
  return r;
}

// reportElement is a report as the media protocol's <report/>.
export function reportElement(ns, r) {
  const attrs = {
    xmlns: ns,
    gathering: r.gathering || "",
    ice: r.ice || "",
    connection: r.connection || "",
    dtls: r.dtls || "",
    "checks-sent": String(r.checksSent || 0),
    "checks-answered": String(r.checksAnswered || 0),
    "packets-sent": String(r.packetsSent || 0),
    "packets-received": String(r.packetsReceived || 0),
  };
  const children = [];
  for (const c of r.candidates || []) {
    const a = { type: c.type, protocol: c.protocol };
    if (c.relayProtocol) a["relay-protocol"] = c.relayProtocol;
    if (c.address) a.address = c.address;
    if (c.url) a.url = c.url;
    children.push(xml("candidate", a));
  }
  for (const e of r.errors || []) children.push(xml("error", { url: e.url, code: String(e.code), text: e.text || "" }));
  if (r.selected) {
    const s = r.selected;
    const a = { "local-type": s.localType, "local-protocol": s.localProtocol };
    if (s.relayProtocol) a["relay-protocol"] = s.relayProtocol;
    if (s.url) a.url = s.url;
    if (s.remoteType) a["remote-type"] = s.remoteType;
    if (s.remoteProtocol) a["remote-protocol"] = s.remoteProtocol;
    if (s.remoteAddress) a["remote-address"] = s.remoteAddress;
    children.push(xml("selected", a));
  }
  return xml("report", attrs, ...children);
}
