// Small SDP helpers for the media signalling: the browser's descriptions go to the Call
// Bridge as they are, except for the screen share's stream id (markScreen).

// sections splits an SDP into its session part and its m-sections, each a list of lines
// without their line ends.
function split(sdp) {
  const lines = sdp.split(/\r\n|\n/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const session = [];
  const media = [];
  for (const line of lines) {
    if (line.startsWith("m=")) media.push([line]);
    else if (media.length) media[media.length - 1].push(line);
    else session.push(line);
  }
  return { session, media };
}

function join({ session, media }) {
  return [...session, ...media.flat()].join("\r\n") + "\r\n";
}

function attr(section, name) {
  const p = `a=${name}:`;
  const line = section.find((l) => l.startsWith(p));
  return line === undefined ? null : line.slice(p.length);
}

const DIRECTIONS = ["sendrecv", "sendonly", "recvonly", "inactive"];

// mediaSections describes each m-section: its kind (audio, video, application), mid,
// direction and the stream and track ids of its a=msid line ("" when it has none).
export function mediaSections(sdp) {
  return split(sdp).media.map((s) => {
    const kind = s[0].slice(2).split(" ")[0];
    const msid = (attr(s, "msid") || "").trim().split(/\s+/);
    const dir = s.find((l) => DIRECTIONS.includes(l.slice(2)));
    return {
      kind,
      mid: attr(s, "mid") || "",
      direction: dir ? dir.slice(2) : "sendrecv",
      stream: msid[0] || "",
      track: msid[1] || "",
      port: Number(s[0].split(" ")[1]) || 0,
    };
  });
}

// markScreen returns sdp with the msid stream id of the m-sections whose mid is in mids
// prefixed with "screen-" (unless it already begins with "screen"): the Call Bridge's SFU
// tells a screen share from a camera by that prefix, and browsers choose MediaStream ids
// themselves. The a=msid lines and the msid of a=ssrc lines are both rewritten, so that
// every line of the section names the same stream.
export function markScreen(sdp, mids) {
  if (!mids || mids.size === 0) return sdp;
  const parts = split(sdp);
  let changed = false;
  parts.media = parts.media.map((s) => {
    const mid = attr(s, "mid");
    if (mid === null || !mids.has(mid)) return s;
    return s.map((line) => {
      let m = /^a=msid:(\S+)(.*)$/.exec(line);
      if (m && m[1] !== "-" && !/^screen/i.test(m[1])) {
        changed = true;
        return `a=msid:screen-${m[1]}${m[2]}`;
      }
      m = /^(a=ssrc:\d+ msid:)(\S+)(.*)$/.exec(line);
      if (m && m[2] !== "-" && !/^screen/i.test(m[2])) {
        changed = true;
        return `${m[1]}screen-${m[2]}${m[3]}`;
      }
      return line;
    });
  });
  return changed ? join(parts) : sdp;
}

// keepCandidates returns sdp with only the a=candidate lines whose transport is protocol
// ("udp" or "tcp"): the connection test tries one way in to the media server at a time.
export function keepCandidates(sdp, protocol) {
  const lines = sdp.split(/\r\n|\n/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const out = lines.filter((l) => {
    if (!l.startsWith("a=candidate:")) return true;
    const f = l.split(" ");
    return f.length > 2 && f[2].toLowerCase() === protocol;
  });
  return out.join("\r\n") + "\r\n";
}
