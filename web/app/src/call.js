// The meeting's audio and video on the page: video tiles with names, the active speaker,
// the speaker and grid layouts, the microphone, camera and screen-share controls (also on
// the keys M, V, S and L), everyone's mute and camera state, the connection's quality, and
// the sound (with a button when the browser's autoplay rules hold it back).
//
// The page's state for assistive technology and tests:
//   body[data-media]          off | connecting | connected | reconnecting | failed | unavailable
//   body[data-quality]        unknown | good | fair | poor
//   #stage .tile[data-participant-id][data-source=camera|screen][data-video=on|off]
//         [data-speaking][data-self][data-large]
//   #participants li[data-audio=on|muted|admin|none][data-video=on|off|admin|none]
import * as devices from "./devices.js";
import { icon } from "./icons.js";
import { MediaSession, simulcastFor } from "./media.js";
import { MSG } from "./messages.js";
import { initialsOf, setToggle } from "./prejoin.js";

const $ = (id) => document.getElementById(id);
const QUALITY_EVERY_MS = 2000;
const VIEW_DEBOUNCE_MS = 250;

export class Call {
  // meeting is the joined Meeting (participants, selfId); choice what the pre-join screen
  // handed over (Prejoin.take).
  constructor(xmpp, meeting, choice, log) {
    this.xmpp = xmpp;
    this.meeting = meeting;
    this.log = log;
    this.choice = choice;
    this.prefs = choice.prefs || devices.loadPrefs();
    this.mic = choice.audio || null; // kept while muted, so that unmuting asks nothing
    this.cam = choice.video || null; // stopped while the camera is off (its light goes out)
    this.screen = null; // {track, stream}
    this.on = { audio: !!choice.micOn, video: !!choice.cameraOn };
    this.has = { audio: !!choice.hasMic, video: !!choice.hasCamera };
    this.admin = { audio: false, video: false }; // the host's mute of our own media
    this.people = new Map(); // participant id → {audio: state, video: state, tracks: Set}
    this.tiles = new Map(); // key participantId/source → tile
    this.audioEls = new Map(); // server track id → <audio>
    this.trackTile = new Map(); // server track id → tile key
    this.layout = localStorage.getItem("confab.layout") === "grid" ? "grid" : "speaker";
    this.speaker = "";
    this.lastRemoteSpeaker = "";
    this.media = null;
    this.closed = false;
    this.soundBlocked = false;
    this.quality = { lost: 0, received: 0 };
    this.resize = new ResizeObserver((entries) => this.resized(entries));
    this.onKey = (e) => this.key(e);
    this.handlers = [];
    this.onTrouble = null; // told when the media fails or reconnects (the page checks the meeting)
    this.bind();
  }

  bind() {
    const on = (id, ev, fn) => {
      const el = $(id);
      el.addEventListener(ev, fn);
      this.handlers.push(() => el.removeEventListener(ev, fn));
    };
    on("toggle-mic", "click", () => this.toggleMic());
    on("toggle-camera", "click", () => this.toggleCamera());
    on("toggle-screen", "click", () => this.toggleScreen());
    on("toggle-layout", "click", () => this.setLayout(this.layout === "grid" ? "speaker" : "grid"));
    on("enable-sound", "click", () => this.enableSound());
    document.addEventListener("keydown", this.onKey);
    this.handlers.push(() => document.removeEventListener("keydown", this.onKey));
  }

  // start shows the tiles and connects the media (unless the person chose chat only).
  async start() {
    $("stage-main").replaceChildren();
    $("stage-strip").replaceChildren();
    $("audio-sink").replaceChildren();
    this.setNotice("");
    $("enable-sound").hidden = true;
    for (const p of this.meeting.participants.values()) this.participant(p);
    this.render();
    this.renderControls();
    if (this.choice.chatOnly) {
      this.setMediaState("off");
      this.setNotice(devices.hasMediaDevices() ? "" : MSG.mediaUnsupported);
      return;
    }
    if (this.mic) this.mic.enabled = true;
    this.media = new MediaSession(
      this.xmpp,
      this.meeting.space,
      {
        onTrack: (t) => this.trackAdded(t),
        onTrackEnded: (t) => this.trackEnded(t),
        onMute: (m) => this.muteChanged(m),
        onSpeaker: (id) => this.speakerChanged(id),
        onState: (st, msg) => this.mediaStateChanged(st, msg),
        onError: (msg) => {
          this.setNotice(msg);
          this.onTrouble?.();
        },
      },
      this.log,
    );
    this.media.muted.audio = this.has.audio && !this.on.audio;
    this.media.muted.video = this.has.video && !this.on.video;
    const size = this.cam ? this.cam.getSettings() : {};
    this.setMediaState("connecting");
    try {
      await this.media.start({
        audio: this.on.audio ? this.mic : null,
        video: this.on.video ? this.cam : null,
        sendAudio: this.has.audio,
        sendVideo: this.has.video,
        encodings: this.has.video ? simulcastFor(size.width, size.height) : null,
      });
    } catch (err) {
      this.log("media:", err);
      if (this.closed) return;
      this.media = null;
      this.setMediaState("unavailable");
      this.setNotice(err.userMessage || MSG.mediaUnavailable);
      this.renderControls();
      return;
    }
    this.renderControls();
    this.qualityTimer = setInterval(() => this.measure(), QUALITY_EVERY_MS);
  }

  // ---- participants and their tiles -----------------------------------------------------

  person(id) {
    let p = this.people.get(id);
    if (!p) {
      p = { audio: "none", video: "none", mute: { audio: null, video: null }, tracks: new Map() };
      this.people.set(id, p);
    }
    return p;
  }

  // participant adds or updates someone of the meeting (a presence).
  participant(p) {
    this.person(p.id);
    const t = this.tile(p.id, "camera");
    const shown = p.self ? `${p.name} (you)` : p.label || p.name; // label: "Ada (2)" beside another Ada
    t.querySelector(".tile-name").textContent = shown;
    t.querySelector(".tile-initials").textContent = initialsOf(p.name);
    t.setAttribute("aria-label", shown);
    t.dataset.self = p.self ? "true" : "false";
    if (p.self) this.showSelf();
    this.refresh(p.id);
    this.render();
  }

  participantLeft(p) {
    for (const source of ["camera", "screen"]) this.removeTile(p.id, source);
    this.people.delete(p.id);
    if (this.speaker === p.id) this.speaker = "";
    if (this.lastRemoteSpeaker === p.id) this.lastRemoteSpeaker = "";
    this.render();
  }

  tile(pid, source) {
    const key = `${pid}/${source}`;
    let t = this.tiles.get(key);
    if (t) return t;
    t = document.createElement("figure");
    t.className = "tile";
    t.dataset.testid = "tile";
    t.dataset.participantId = pid;
    t.dataset.source = source;
    t.dataset.video = "off";
    t.setAttribute("role", "group");
    const v = document.createElement("video");
    v.autoplay = true;
    v.muted = true; // sound plays through the <audio> elements
    v.playsInline = true;
    v.setAttribute("aria-hidden", "true");
    const ph = document.createElement("div");
    ph.className = "tile-placeholder";
    const init = document.createElement("span");
    init.className = "avatar tile-initials";
    init.setAttribute("aria-hidden", "true");
    ph.append(init);
    const cap = document.createElement("figcaption");
    const name = document.createElement("span");
    name.className = "tile-name";
    if (source === "camera") {
      const mic = document.createElement("span");
      mic.className = "tile-mic";
      mic.hidden = true;
      cap.append(mic);
    }
    cap.append(name);
    t.append(v, ph, cap);
    if (source === "screen") {
      const p = this.meeting.participants.get(pid);
      const who = p ? (p.self ? "Your" : `${p.name}’s`) : "A";
      name.textContent = `${who} screen`;
      t.setAttribute("aria-label", `${who} screen`);
      init.replaceChildren(icon("screen"));
    }
    this.tiles.set(key, t);
    return t;
  }

  removeTile(pid, source) {
    const key = `${pid}/${source}`;
    const t = this.tiles.get(key);
    if (!t) return;
    this.resize.unobserve(t);
    const v = t.querySelector("video");
    v.srcObject = null;
    t.remove();
    this.tiles.delete(key);
  }

  setTileVideo(t, track) {
    const v = t.querySelector("video");
    if (track) {
      if (!v.srcObject || v.srcObject.getVideoTracks()[0] !== track) v.srcObject = new MediaStream([track]);
      v.play().catch(() => {});
      t.dataset.video = "on";
    } else {
      v.srcObject = null;
      t.dataset.video = "off";
    }
  }

  showSelf() {
    const id = this.meeting.selfId;
    if (!id) return;
    const t = this.tile(id, "camera");
    t.dataset.mirror = "true";
    this.setTileVideo(t, this.on.video ? this.cam : null);
    if (this.screen) {
      const s = this.tile(id, "screen");
      this.setTileVideo(s, this.screen.track);
    } else {
      this.removeTile(id, "screen");
    }
  }

  // ---- received media -----------------------------------------------------------------

  trackAdded(t) {
    const p = this.person(t.participant);
    p.tracks.set(t.id, { kind: t.kind, source: t.source });
    if (t.kind === "audio") {
      const a = document.createElement("audio");
      a.autoplay = true;
      a.dataset.track = t.id;
      a.dataset.participantId = t.participant;
      a.srcObject = new MediaStream([t.track]);
      $("audio-sink").append(a);
      this.audioEls.set(t.id, a);
      this.play(a);
      if (p.audio === "none") p.audio = "on";
    } else {
      const tile = this.tile(t.participant, t.source === "screen" ? "screen" : "camera");
      tile.dataset.track = t.id;
      this.trackTile.set(t.id, tile);
      this.setTileVideo(tile, t.track);
      if (t.source !== "screen" && p.video === "none") p.video = "on";
      tile.dataset.view = "";
      this.resize.observe(tile);
    }
    this.refresh(t.participant);
    this.render();
  }

  trackEnded(t) {
    const a = this.audioEls.get(t.id);
    if (a) {
      a.srcObject = null;
      a.remove();
      this.audioEls.delete(t.id);
    }
    const tile = this.trackTile.get(t.id);
    this.trackTile.delete(t.id);
    const p = this.people.get(t.participant);
    if (p) p.tracks.delete(t.id);
    if (tile && tile.dataset.track === t.id) {
      if (t.source === "screen") this.removeTile(t.participant, "screen");
      else {
        this.resize.unobserve(tile);
        this.setTileVideo(tile, null);
        delete tile.dataset.track;
      }
    }
    if (p) {
      // With no track of that kind left, and no mute state known, the device is gone.
      const left = [...p.tracks.values()];
      if (t.kind === "audio" && !left.some((x) => x.kind === "audio") && !p.mute.audio) p.audio = "none";
      if (t.source === "camera" && !left.some((x) => x.source === "camera") && !p.mute.video) p.video = "none";
    }
    this.refresh(t.participant);
    this.render();
  }

  play(a) {
    a.play().catch((err) => {
      if (err && err.name === "NotAllowedError" && !this.soundBlocked) {
        this.soundBlocked = true;
        $("enable-sound").hidden = false;
        document.body.dataset.sound = "blocked";
        this.setNotice(MSG.soundBlocked);
      }
    });
  }

  enableSound() {
    this.soundBlocked = false;
    $("enable-sound").hidden = true;
    document.body.dataset.sound = "on";
    if ($("media-status").textContent === MSG.soundBlocked) this.setNotice("");
    for (const a of this.audioEls.values()) this.play(a);
  }

  muteChanged(m) {
    const self = m.participant === this.meeting.selfId;
    const p = this.person(m.participant);
    const kind = m.kind === "video" ? "video" : "audio";
    p.mute[kind] = { self: m.self, admin: m.admin };
    // Unmuted: "on" if a track of that kind is received, else the device is not there.
    const has = [...p.tracks.values()].some((t) => (kind === "audio" ? t.kind === "audio" : t.source === "camera"));
    if (kind === "audio") p.audio = m.admin ? "admin" : m.self ? "muted" : has ? "on" : "none";
    else p.video = m.admin ? "admin" : m.self ? "off" : has ? "on" : "none";
    if (self) this.adminChanged(kind, m.admin);
    this.refresh(m.participant);
  }

  // adminChanged applies the host's mute of our own microphone or camera: the device stops
  // sending and its button is locked until the host lifts it; lifting it leaves the device
  // muted, for the person to turn on.
  adminChanged(kind, admin) {
    if (this.admin[kind] === admin) return;
    this.admin[kind] = admin;
    if (admin) {
      if (this.on[kind]) {
        if (kind === "audio") this.muteMic(true);
        else this.cameraOff();
      }
      this.setNotice(kind === "audio" ? MSG.mutedByHost : MSG.cameraOffByHost);
    } else {
      this.setNotice(kind === "audio" ? MSG.hostAllowsAudio : MSG.hostAllowsVideo);
    }
    document.body.dataset[kind === "audio" ? "adminAudio" : "adminVideo"] = admin ? "true" : "false";
    this.renderControls();
  }

  speakerChanged(id) {
    this.speaker = id;
    if (id && id !== this.meeting.selfId) this.lastRemoteSpeaker = id;
    for (const t of this.tiles.values()) t.dataset.speaking = t.dataset.participantId === id && t.dataset.source === "camera" ? "true" : "false";
    for (const li of $("participants").children) li.dataset.speaking = li.dataset.participantId === id ? "true" : "false";
    this.render();
  }

  mediaStateChanged(st, msg) {
    if (this.closed) return;
    // Media trouble may be the meeting's: the page that set onTrouble checks the meeting.
    if (st === "reconnecting" || st === "failed") this.onTrouble?.();
    const map = { connecting: "connecting", connected: "connected", reconnecting: "reconnecting", failed: "failed", closed: "off" };
    this.setMediaState(map[st] || st);
    // Why the server ended the media, when it said (the media ladder's cause).
    document.body.dataset.mediaCause = st === "failed" && this.media && this.media.failure ? this.media.failure.cause || "" : "";
    if (st === "connected") {
      if (!this.soundBlocked) this.setNotice("");
      setTimeout(() => this.measure(), 1000); // the first reading of the quality
    } else if (msg) {
      this.setNotice(msg);
    }
  }

  setMediaState(s) {
    document.body.dataset.media = s;
    if (s !== "connected") this.setQuality("unknown");
    $("quality").hidden = s !== "connected" && s !== "reconnecting";
  }

  setNotice(text) {
    const el = $("media-status");
    el.textContent = text;
    el.hidden = !text;
  }

  // ---- the state of everyone's microphone and camera --------------------------------------

  // state returns what a participant's microphone and camera do now.
  state(id) {
    if (id === this.meeting.selfId) {
      if (this.choice.chatOnly) return { audio: "none", video: "none" };
      const a = this.admin.audio ? "admin" : this.on.audio ? "on" : this.has.audio ? "muted" : "none";
      const v = this.admin.video ? "admin" : this.on.video ? "on" : this.has.video ? "off" : "none";
      return { audio: a, video: v };
    }
    const p = this.people.get(id);
    return p ? { audio: p.audio, video: p.video } : { audio: "none", video: "none" };
  }

  // refresh shows a participant's state in the list and on the tile.
  refresh(id) {
    const st = this.state(id);
    const li = $("participants").querySelector(`li[data-participant-id="${CSS.escape(id)}"]`);
    if (li) decorate(li, st);
    const t = this.tiles.get(`${id}/camera`);
    if (t) {
      const mic = t.querySelector(".tile-mic");
      const muted = st.audio === "muted" || st.audio === "admin";
      mic.hidden = !muted;
      mic.replaceChildren(icon("mic-off"), hiddenText(st.audio === "admin" ? "muted by the host" : "muted"));
      t.dataset.audio = st.audio;
      // A muted camera's track stays, sending nothing: its last frame is not shown.
      t.dataset.video = t.querySelector("video").srcObject && st.video === "on" ? "on" : "off";
    }
  }

  // ---- layout ------------------------------------------------------------------------------

  setLayout(l) {
    this.layout = l;
    try {
      localStorage.setItem("confab.layout", l);
    } catch {
      // not remembered
    }
    this.render();
    this.renderControls();
  }

  // render places the tiles: a screen share from someone else always large, the others in
  // the strip below; otherwise, in the speaker layout the active speaker large (the last
  // one who spoke, never oneself unless alone), in the grid layout everyone alike.
  render() {
    if (this.closed) return;
    const main = $("stage-main");
    const strip = $("stage-strip");
    if (!main || !strip) return;
    const order = [];
    for (const id of this.meeting.participants.keys()) {
      if (this.tiles.has(`${id}/screen`)) order.push(this.tiles.get(`${id}/screen`));
      if (this.tiles.has(`${id}/camera`)) order.push(this.tiles.get(`${id}/camera`));
    }
    const self = this.meeting.selfId;
    const remoteScreen = order.find((t) => t.dataset.source === "screen" && t.dataset.participantId !== self);
    let large = [];
    if (remoteScreen) {
      large = [remoteScreen];
    } else if (this.layout === "speaker" && order.length > 1) {
      const cams = order.filter((t) => t.dataset.source === "camera");
      const pick =
        cams.find((t) => t.dataset.participantId === this.lastRemoteSpeaker) ||
        cams.find((t) => t.dataset.participantId !== self && t.dataset.video === "on") ||
        cams.find((t) => t.dataset.participantId !== self);
      large = pick ? [pick] : [];
    } else {
      large = order;
    }
    const small = order.filter((t) => !large.includes(t));
    const mode = small.length === 0 ? "grid" : "focus";
    $("stage").dataset.mode = mode;
    $("stage").dataset.layout = this.layout;
    main.dataset.count = String(large.length);
    const cols = large.length <= 1 ? 1 : large.length <= 4 ? 2 : large.length <= 9 ? 3 : 4;
    main.style.setProperty("--cols", String(cols));
    placeChildren(main, large);
    placeChildren(strip, small);
    strip.hidden = small.length === 0;
    for (const t of large) t.dataset.large = "true";
    for (const t of small) t.dataset.large = "false";
  }

  renderControls() {
    const media = !!this.media && !this.choice.chatOnly;
    const lockA = this.admin.audio;
    const lockV = this.admin.video;
    setToggle($("toggle-mic"), this.on.audio, media && !lockA, "mic");
    setToggle($("toggle-camera"), this.on.video, media && !lockV, "camera");
    $("toggle-mic").dataset.locked = lockA ? "true" : "false";
    $("toggle-camera").dataset.locked = lockV ? "true" : "false";
    // No such device (refused, or none found): shown plain, still there to try again.
    $("toggle-mic").dataset.none = this.has.audio ? "false" : "true";
    $("toggle-camera").dataset.none = this.has.video ? "false" : "true";
    $("toggle-mic").title = lockA ? "Muted by the host" : this.on.audio ? "Mute (M)" : "Unmute (M)";
    $("toggle-camera").title = lockV ? "Turned off by the host" : this.on.video ? "Turn camera off (V)" : "Turn camera on (V)";
    const share = $("toggle-screen");
    share.disabled = !media || !devices.canShareScreen();
    // Its words say what it does ("Share screen", "Stop sharing"): no aria-pressed.
    share.setAttribute("aria-label", this.screen ? "Stop sharing" : "Share screen");
    share.dataset.on = this.screen ? "true" : "false";
    share.title = (this.screen ? "Stop sharing" : "Share screen") + " (S)";
    share.querySelector(".toggle-state").textContent = this.screen ? "Stop sharing" : "Share screen";
    share.querySelector(".toggle-icon").replaceChildren(icon("screen"));
    // The layout button says which layout it switches to.
    const lay = $("toggle-layout");
    const next = this.layout === "grid" ? "Speaker view" : "Grid view";
    lay.setAttribute("aria-label", next);
    lay.title = `${next} (L)`;
    lay.querySelector(".toggle-state").textContent = next;
    lay.querySelector(".toggle-icon").replaceChildren(icon(this.layout === "grid" ? "speaker" : "grid"));
    document.body.dataset.layout = this.layout;
    const self = this.meeting.selfId;
    if (self) this.refresh(self);
    document.body.dataset.mic = this.on.audio ? "on" : "off";
    document.body.dataset.camera = this.on.video ? "on" : "off";
    document.body.dataset.screen = this.screen ? "on" : "off";
  }

  // ---- controls -----------------------------------------------------------------------------

  key(e) {
    if (this.closed || e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    if (document.body.dataset.view !== "meeting") return;
    const k = e.key.toLowerCase();
    const act = { m: () => this.toggleMic(), v: () => this.toggleCamera(), s: () => this.toggleScreen(), l: () => $("toggle-layout").click() }[k];
    if (!act) return;
    e.preventDefault();
    act();
  }

  async toggleMic() {
    if (!this.media || this.admin.audio) return;
    if (this.on.audio) this.muteMic(true);
    else await this.muteMic(false);
  }

  async muteMic(mute) {
    if (mute) {
      this.on.audio = false;
      if (this.mic) this.mic.enabled = false;
      this.media?.setTrack("audio", null).catch((err) => this.log("mic off:", err));
      this.media?.setMuted("audio", true);
    } else {
      if (!this.mic || this.mic.readyState === "ended") {
        try {
          this.mic = (await devices.open({ microphone: this.prefs.microphone, audio: true })).getAudioTracks()[0];
        } catch (err) {
          this.setNotice(devices.problem(err).message);
          return;
        }
      }
      this.on.audio = true;
      this.has.audio = true;
      this.mic.enabled = true;
      await this.media?.setTrack("audio", this.mic);
      this.media?.setMuted("audio", false);
    }
    this.prefs.micOn = this.on.audio;
    devices.savePrefs(this.prefs);
    this.renderControls();
  }

  async toggleCamera() {
    if (!this.media || this.admin.video) return;
    if (this.on.video) this.cameraOff();
    else await this.cameraOn();
  }

  cameraOff() {
    this.on.video = false;
    this.media?.setTrack("video", null).catch((err) => this.log("camera off:", err));
    this.media?.setMuted("video", true);
    this.cam?.stop();
    this.cam = null;
    this.prefs.cameraOn = false;
    devices.savePrefs(this.prefs);
    this.showSelf();
    this.renderControls();
  }

  async cameraOn() {
    let track;
    try {
      track = (await devices.open({ camera: this.prefs.camera, video: true })).getVideoTracks()[0];
    } catch (err) {
      this.setNotice(devices.problem(err).message);
      return;
    }
    if (this.closed) {
      track.stop();
      return;
    }
    this.cam = track;
    this.on.video = true;
    this.has.video = true;
    await this.media?.setTrack("video", track);
    this.media?.setMuted("video", false);
    this.prefs.cameraOn = true;
    devices.savePrefs(this.prefs);
    this.showSelf();
    this.renderControls();
  }

  async toggleScreen() {
    if (!this.media) return;
    if (this.screen) {
      this.stopScreen();
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    } catch (err) {
      this.log("screen:", err);
      if (err && err.name !== "AbortError") this.setNotice(MSG.screenDenied);
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track || this.closed || !this.media) {
      devices.stopTracks(stream.getTracks());
      return;
    }
    track.contentHint = "detail";
    track.addEventListener("ended", () => {
      if (this.screen && this.screen.track === track) this.stopScreen();
    });
    this.screen = { track, stream };
    this.media.startScreen(track, stream);
    this.showSelf();
    this.render();
    this.renderControls();
  }

  stopScreen() {
    const s = this.screen;
    if (!s) return;
    this.screen = null;
    this.media?.stopScreen();
    devices.stopTracks(s.stream.getTracks());
    this.showSelf();
    this.render();
    this.renderControls();
  }

  // ---- sizes and quality ------------------------------------------------------------------

  resized(entries) {
    for (const e of entries) {
      const t = e.target;
      clearTimeout(t._viewTimer);
      t._viewTimer = setTimeout(() => this.sendView(t), VIEW_DEBOUNCE_MS);
    }
  }

  sendView(t) {
    const id = t.dataset.track;
    if (!id || !this.media || !t.isConnected) return;
    const r = t.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(r.width * dpr);
    const h = Math.round(r.height * dpr);
    const v = `${w}x${h}`;
    if (t.dataset.view === v || w === 0 || h === 0) return;
    t.dataset.view = v;
    this.media.view(id, w, h);
  }

  async measure() {
    if (!this.media || this.closed) return;
    let s;
    try {
      s = await this.media.stats();
    } catch {
      return;
    }
    if (!s || this.closed) return;
    const dl = s.lost - this.quality.lost;
    const dr = s.received - this.quality.received;
    this.quality = { lost: s.lost, received: s.received };
    const loss = dl > 0 && dl + dr > 0 ? dl / (dl + dr) : 0;
    const rtt = s.rtt;
    for (const t of this.tiles.values()) {
      const v = t.querySelector("video");
      if (v.videoWidth) t.dataset.frame = `${v.videoWidth}x${v.videoHeight}`;
    }
    if (document.body.dataset.media !== "connected") return;
    let q = "good";
    if ((rtt !== null && rtt > 0.6) || loss > 0.08) q = "poor";
    else if ((rtt !== null && rtt > 0.3) || loss > 0.02) q = "fair";
    const detail = `Round trip ${rtt === null ? "unknown" : Math.round(rtt * 1000) + " ms"}, packet loss ${(loss * 100).toFixed(1)}%`;
    this.setQuality(q, detail);
  }

  setQuality(q, detail = "") {
    document.body.dataset.quality = q;
    const el = $("quality");
    el.dataset.quality = q;
    el.title = detail;
    const words = { good: "Good", fair: "Fair", poor: "Poor", unknown: "—" };
    el.querySelector(".quality-word").textContent = words[q] || "—";
    el.querySelector(".quality-detail").textContent = detail ? `: ${detail}` : "";
  }

  // resumed: the XMPP session came back after a drop; the media may need an ICE restart.
  resumed() {
    this.media?.resumed();
  }

  // handover ends the media but keeps the camera and the microphone running, and returns
  // them with their state as a pre-join choice for the next Call: the meeting was lost and
  // is being rejoined, and the person should not be asked for the devices again. A screen
  // share ends.
  handover() {
    const cam = this.on.video ? this.cam : null;
    if (!cam) this.cam?.stop();
    const choice = {
      chatOnly: !!this.choice.chatOnly,
      audio: this.mic,
      video: cam,
      micOn: this.on.audio,
      cameraOn: !!cam,
      hasMic: this.has.audio,
      hasCamera: this.has.video,
      prefs: this.prefs,
    };
    this.mic = this.cam = null; // close stops what it still holds: not these
    this.close();
    return choice;
  }

  // close releases everything: every track stopped, the connection closed. Leaving the
  // meeting (the caller sends the unavailable presence) ends the media on the server.
  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.qualityTimer);
    for (const off of this.handlers) off();
    this.resize.disconnect();
    this.media?.close();
    this.media = null;
    devices.stopTracks(this.mic, this.cam, this.screen ? this.screen.stream.getTracks() : []);
    this.mic = this.cam = this.screen = null;
    for (const t of this.tiles.values()) {
      clearTimeout(t._viewTimer);
      t.querySelector("video").srcObject = null;
    }
    for (const a of this.audioEls.values()) a.srcObject = null;
    this.tiles.clear();
    this.audioEls.clear();
    $("stage-main").replaceChildren();
    $("stage-strip").replaceChildren();
    $("audio-sink").replaceChildren();
    $("enable-sound").hidden = true;
    this.setNotice("");
    this.setMediaState("off");
  }
}

function placeChildren(parent, children) {
  children.forEach((c, i) => {
    if (parent.children[i] !== c) parent.insertBefore(c, parent.children[i] || null);
  });
  while (parent.children.length > children.length) parent.lastElementChild.remove();
}

function hiddenText(s) {
  const el = document.createElement("span");
  el.className = "visually-hidden";
  el.textContent = s;
  return el;
}

const AUDIO_WORDS = { on: "microphone on", muted: "microphone muted", admin: "microphone muted by the host", none: "no microphone" };
const VIDEO_WORDS = { on: "camera on", off: "camera off", admin: "camera turned off by the host", none: "no camera" };

// decorate shows a participant's microphone and camera state in the participants list.
export function decorate(li, st) {
  li.dataset.audio = st.audio;
  li.dataset.video = st.video;
  let box = li.querySelector(".media-state");
  if (!box) {
    box = document.createElement("span");
    box.className = "media-state";
    li.append(box);
  }
  const mic = document.createElement("span");
  mic.className = "state-mic";
  mic.dataset.state = st.audio;
  mic.title = cap(AUDIO_WORDS[st.audio]);
  mic.append(icon(st.audio === "on" ? "mic" : "mic-off"), hiddenText(AUDIO_WORDS[st.audio]));
  const cam = document.createElement("span");
  cam.className = "state-camera";
  cam.dataset.state = st.video;
  cam.title = cap(VIDEO_WORDS[st.video]);
  cam.append(icon(st.video === "on" ? "camera" : "camera-off"), hiddenText(VIDEO_WORDS[st.video]));
  box.replaceChildren(mic, cam);
}

function cap(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : "";
}
