// Unit tests of the SDP helpers (node --test, see package.json).
import { test } from "node:test";
import assert from "node:assert/strict";

import { markScreen, mediaSections } from "../src/sdp.js";

const offer = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1 2",
  "a=msid-semantic: WMS cam-stream",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "a=mid:0",
  "a=sendonly",
  "a=msid:cam-stream mic-track",
  "m=video 9 UDP/TLS/RTP/SAVPF 96",
  "a=mid:1",
  "a=sendonly",
  "a=msid:cam-stream cam-track",
  "a=rid:q send",
  "m=video 9 UDP/TLS/RTP/SAVPF 96",
  "a=mid:2",
  "a=sendonly",
  "a=msid:b3c0d1e2 screen-track",
  "a=ssrc:1234 cname:x",
  "a=ssrc:1234 msid:b3c0d1e2 screen-track",
  "",
].join("\r\n");

test("markScreen prefixes the screen section's stream id, and only that", () => {
  const got = markScreen(offer, new Set(["2"]));
  assert.match(got, /a=msid:screen-b3c0d1e2 screen-track\r\n/);
  assert.match(got, /a=ssrc:1234 msid:screen-b3c0d1e2 screen-track\r\n/);
  assert.match(got, /a=msid:cam-stream cam-track\r\n/);
  assert.match(got, /a=msid:cam-stream mic-track\r\n/);
  assert.ok(got.endsWith("\r\n"));
  assert.equal(got.split("\r\n").length, offer.split("\r\n").length);
});

test("markScreen leaves an SDP without screen sections, or already marked, as it is", () => {
  assert.equal(markScreen(offer, new Set()), offer);
  assert.equal(markScreen(offer, new Set(["9"])), offer);
  const once = markScreen(offer, new Set(["2"]));
  assert.equal(markScreen(once, new Set(["2"])), once);
});

test("mediaSections reads kind, mid, direction and msid", () => {
  const s = mediaSections(offer);
  assert.deepEqual(
    s.map((x) => [x.kind, x.mid, x.direction, x.stream, x.track]),
    [
      ["audio", "0", "sendonly", "cam-stream", "mic-track"],
      ["video", "1", "sendonly", "cam-stream", "cam-track"],
      ["video", "2", "sendonly", "b3c0d1e2", "screen-track"],
    ],
  );
});

test("keepCandidates keeps the candidates of one transport", async () => {
  const { keepCandidates } = await import("../src/sdp.js");
  const answer = [
    "v=0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "a=candidate:1 1 udp 2130706431 203.0.113.10 10000 typ host",
    "a=candidate:2 1 tcp 1671430143 203.0.113.10 10000 typ host tcptype passive",
    "a=end-of-candidates",
    "",
  ].join("\r\n");
  const udp = keepCandidates(answer, "udp");
  assert.ok(udp.includes(" udp ") && !udp.includes(" tcp "), udp);
  assert.ok(udp.includes("a=end-of-candidates\r\n"));
  const tcp = keepCandidates(answer, "tcp");
  assert.ok(tcp.includes("tcptype passive") && !tcp.includes(" udp 2130706431"), tcp);
});
