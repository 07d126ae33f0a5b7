// "Test your connection": before joining, the page connects to the media server over each
// way in — directly over UDP, directly over TCP (ICE-TCP), and through each TURN URL the
// server offers — and asks the server's media ladder what happened (the connection test
// endpoints, docs/protocol.md, Media > Connection test). Nothing is recorded and no camera
// or microphone is used: the page sends a small drawn picture.
import { Gathered, ICEErrors, collectReport } from "./report.js";
import { keepCandidates } from "./sdp.js";
import { MSG } from "./messages.js";

const GATHER_MS = 6000; // the longest wait for the browser's candidates
const CONNECT_MS = 10000; // the longest wait for a path to connect
const MEDIA_MS = 1500; // once connected, how long media flows before the report

// describe names a TURN URL's way in, in words.
export function describe(url) {
  const hp = url.replace(/^turns?:/, "").replace(/\?.*$/, "");
  if (url.startsWith("turns:")) return `Through the relay server ${hp}, over TLS`;
  if (url.includes("transport=tcp")) return `Through the relay server ${hp}, over TCP`;
  return `Through the relay server ${hp}, over UDP`;
}

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON
  }
  if (!res.ok) {
    const err = new Error((data && data.error) || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function waitFor(target, event, done, ms) {
  return new Promise((resolve) => {
    if (done()) return resolve(true);
    const t = setTimeout(() => {
      target.removeEventListener(event, check);
      resolve(false);
    }, ms);
    function check() {
      if (!done()) return;
      clearTimeout(t);
      target.removeEventListener(event, check);
      resolve(true);
    }
    target.addEventListener(event, check);
  });
}

// picture is a small drawn video track: something to send without a camera.
function picture() {
  const canvas = document.createElement("canvas");
  canvas.width = 160;
  canvas.height = 90;
  const ctx = canvas.getContext("2d");
  let n = 0;
  const draw = () => {
    ctx.fillStyle = `hsl(${(n * 7) % 360} 60% 45%)`;
    ctx.fillRect(0, 0, 160, 90);
    ctx.fillStyle = "#fff";
    ctx.fillText(`Confab test ${n++}`, 10, 50);
  };
  draw();
  const timer = setInterval(draw, 100);
  const track = canvas.captureStream(10).getVideoTracks()[0];
  return {
    track,
    stop: () => {
      clearInterval(timer);
      track.stop();
    },
  };
}

// probe tries one way in; it returns {ok, ladder, error}.
async function probe(test, path, log) {
  const pc = new RTCPeerConnection({ iceServers: path.servers, iceTransportPolicy: path.relay ? "relay" : "all" });
  const errors = new ICEErrors();
  const gathered = new Gathered();
  pc.addEventListener("icecandidateerror", (ev) => errors.add(ev));
  pc.addEventListener("icecandidate", (ev) => gathered.add(ev));
  const pic = picture();
  try {
    pc.addTransceiver(pic.track, { direction: "sendonly" });
    await pc.setLocalDescription();
    await waitFor(pc, "icegatheringstatechange", () => pc.iceGatheringState === "complete", GATHER_MS);
    const { probe: id, answer } = await post(`/api/webapp/connection-test/${encodeURIComponent(test)}/probes`, { offer: pc.localDescription.sdp, url: path.relay ? path.id : "" });
    await pc.setRemoteDescription({ type: "answer", sdp: path.keep ? keepCandidates(answer, path.keep) : answer });
    const up = await waitFor(pc, "connectionstatechange", () => pc.connectionState === "connected" || pc.connectionState === "failed", CONNECT_MS);
    if (up && pc.connectionState === "connected") await new Promise((r) => setTimeout(r, MEDIA_MS));
    const report = await collectReport(pc, errors, gathered);
    report.final = true;
    const ladder = await post(`/api/webapp/connection-test/probes/${encodeURIComponent(id)}/report`, report);
    log("connection test", path.id, ladder.state, ladder.path || ladder.cause || "");
    return { ok: ladder.state === "connected", ladder };
  } catch (err) {
    log("connection test", path.id, "failed:", err);
    return { ok: false, error: err.message || String(err) };
  } finally {
    pic.stop();
    pc.close();
  }
}

// detailOf says in words what a path's result was.
function detailOf(path, res) {
  if (res.ok) return path.relay ? "The relay server passes audio and video on." : "Audio and video go straight to the meeting server.";
  if (res.error) return res.error;
  const l = res.ladder;
  const failed = (l.steps || []).find((s) => s.state === "failed" && s.cause);
  if (path.relay && failed && failed.name.startsWith("relay ")) return "The relay server could not be reached from here.";
  if (!path.relay && failed && failed.name === "checks") return "Blocked by your network.";
  return l.text || "Did not connect.";
}

// runConnectionTest runs the test, calling onPath(path, state, detail) as each way in is
// tried, and returns the verdict: {verdict: direct | relay | blocked | blocked-no-turn,
// message, results}.
export async function runConnectionTest({ onPath = () => {}, log = () => {} } = {}) {
  const t = await post("/api/webapp/connection-test");
  const paths = [
    { id: "udp", name: "Directly, over UDP (the best way)", how: "directly over UDP", servers: [], keep: "udp" },
    { id: "tcp", name: "Directly, over TCP", how: "directly over TCP", servers: [], keep: "tcp" },
  ];
  let relays = 0;
  for (const s of t.iceServers || []) {
    for (const url of s.urls || []) {
      if (!url.startsWith("turn:") && !url.startsWith("turns:")) continue;
      relays++;
      const name = describe(url);
      paths.push({ id: url, name, how: name.charAt(0).toLowerCase() + name.slice(1), relay: true,
        servers: [{ urls: [url], username: s.username, credential: s.credential }] });
    }
  }
  for (const p of paths) onPath(p, "waiting", "");
  const results = [];
  for (const p of paths) {
    onPath(p, "running", "Trying…");
    const res = await probe(t.test, p, log);
    results.push({ path: p, ...res });
    onPath(p, res.ok ? "ok" : "failed", detailOf(p, res));
  }
  const works = results.filter((r) => r.ok);
  if (works.some((r) => r.path.id === "udp")) return { verdict: "direct", message: MSG.testDirect, results };
  if (works.length > 0) return { verdict: "relay", message: MSG.testRelay(works[0].path.how), results };
  if (relays === 0) return { verdict: "blocked-no-turn", message: MSG.testBlockedNoTurn, results };
  return { verdict: "blocked", message: MSG.testBlocked, results };
}
