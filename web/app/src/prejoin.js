// The pre-join screen: the person sees their camera, hears (sees) their microphone, picks
// devices and chooses to join with them on or off. When the browser refuses the devices,
// or there are none, it says so and offers to join anyway: receiving only, or chat only.
import * as devices from "./devices.js";
import { icon } from "./icons.js";
import { MSG } from "./messages.js";

const $ = (id) => document.getElementById(id);

export class Prejoin {
  constructor(log) {
    this.log = log;
    this.prefs = devices.loadPrefs();
    this.audio = null; // the microphone track, kept into the meeting
    this.video = null; // the camera track, kept into the meeting
    this.meter = null;
    this.problem = null;
    this.seq = 0; // each (re)open of the devices; a late answer of an older one is dropped
    this.active = false;
    $("prejoin-mic").addEventListener("click", () => this.toggle("audio"));
    $("prejoin-camera").addEventListener("click", () => this.toggle("video"));
    $("prejoin-retry").addEventListener("click", () => this.openDevices());
    $("camera-select").addEventListener("change", (e) => this.choose("video", e.target.value));
    $("mic-select").addEventListener("change", (e) => this.choose("audio", e.target.value));
  }

  // open shows the screen for the meeting called title and asks for the devices.
  open(title, name) {
    this.active = true;
    $("prejoin-meeting").textContent = title;
    $("preview-initials").textContent = initialsOf(name);
    this.render();
    return this.openDevices();
  }

  async openDevices() {
    const seq = ++this.seq;
    this.stopTracks();
    this.setProblem(null);
    if (!devices.hasMediaDevices()) {
      this.setCheck("unsupported");
      this.setProblem({ kind: "unsupported", message: MSG.mediaUnsupported });
      this.render();
      return;
    }
    this.setCheck("pending");
    this.cameraPresent = this.micPresent = undefined;
    this.render();
    // Both are opened even when one is to start off: the person sees that the device works
    // (the camera's light goes out again at once when it starts off).
    const got = await devices.openEach({ camera: this.prefs.camera, microphone: this.prefs.microphone, video: true, audio: true });
    if (seq !== this.seq || !this.active) {
      devices.stopTracks(got.audio, got.video);
      return;
    }
    this.audio = got.audio;
    this.video = got.video;
    if (this.video && !this.prefs.cameraOn) {
      this.video.stop();
      this.video = null;
      this.cameraPresent = true;
    } else {
      this.cameraPresent = !!this.video;
    }
    this.micPresent = !!this.audio;
    const err = got.audioError && got.videoError ? got.audioError : !got.audio && !got.video ? got.audioError || got.videoError : null;
    if (err) this.setProblem(devices.problem(err));
    else if (got.videoError && !this.cameraPresent) this.setProblem(partial(devices.problem(got.videoError), "camera"));
    else if (got.audioError) this.setProblem(partial(devices.problem(got.audioError), "microphone"));
    this.setCheck(this.problem ? this.problem.kind : "ok");
    await this.fillDevices();
    this.startMeter();
    this.render();
  }

  setCheck(state) {
    document.body.dataset.mediaCheck = state;
  }

  setProblem(p) {
    this.problem = p;
    const el = $("prejoin-problem");
    el.textContent = p ? p.message : "";
    el.hidden = !p;
    $("prejoin-retry").hidden = !p || p.kind === "unsupported";
  }

  async fillDevices() {
    let list = { cameras: [], microphones: [] };
    try {
      list = await devices.listDevices();
    } catch (err) {
      this.log("devices:", err);
    }
    const fill = (sel, items, current) => {
      const el = $(sel);
      el.replaceChildren();
      for (const d of items) {
        const o = document.createElement("option");
        o.value = d.id;
        o.textContent = d.label;
        el.append(o);
      }
      if (current && items.some((d) => d.id === current)) el.value = current;
      el.disabled = items.length === 0;
      el.closest(".field").hidden = items.length === 0;
    };
    const camId = this.video ? this.video.getSettings().deviceId : this.prefs.camera;
    const micId = this.audio ? this.audio.getSettings().deviceId : this.prefs.microphone;
    fill("camera-select", list.cameras, camId);
    fill("mic-select", list.microphones, micId);
  }

  startMeter() {
    this.meter?.stop();
    this.meter = null;
    const bar = $("mic-level");
    const fill = bar.firstElementChild;
    const show = (level) => {
      const pct = Math.round(level * 100);
      fill.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
    };
    show(0);
    if (!this.audio || !this.prefs.micOn) return;
    this.meter = new devices.LevelMeter(this.audio, show);
  }

  async toggle(kind) {
    this.meter?.resume(); // a click: the audio context may start now
    if (kind === "audio") {
      this.prefs.micOn = !this.prefs.micOn;
      if (this.audio) this.audio.enabled = this.prefs.micOn;
      this.startMeter();
    } else {
      this.prefs.cameraOn = !this.prefs.cameraOn;
      if (!this.prefs.cameraOn && this.video) {
        this.video.stop();
        this.video = null;
      } else if (this.prefs.cameraOn && !this.video && this.cameraPresent !== false) {
        await this.reopen("video");
      }
    }
    devices.savePrefs(this.prefs);
    this.render();
  }

  async choose(kind, id) {
    if (kind === "video") this.prefs.camera = id;
    else this.prefs.microphone = id;
    devices.savePrefs(this.prefs);
    if (kind === "video" && !this.prefs.cameraOn) return;
    await this.reopen(kind);
    this.render();
  }

  async reopen(kind) {
    const seq = ++this.seq;
    try {
      const s = await devices.open({
        camera: this.prefs.camera,
        microphone: this.prefs.microphone,
        video: kind === "video",
        audio: kind === "audio",
      });
      const track = kind === "video" ? s.getVideoTracks()[0] : s.getAudioTracks()[0];
      if (seq !== this.seq || !this.active) {
        track?.stop();
        return;
      }
      if (kind === "video") {
        this.video?.stop();
        this.video = track || null;
        this.cameraPresent = !!track;
      } else {
        this.audio?.stop();
        this.audio = track || null;
        if (this.audio) this.audio.enabled = this.prefs.micOn;
        this.micPresent = !!track;
        this.startMeter();
      }
      this.setProblem(null);
      this.setCheck("ok");
    } catch (err) {
      this.log("device:", err);
      this.setProblem(devices.problem(err));
      this.setCheck(this.problem.kind);
    }
  }

  render() {
    const camOn = this.prefs.cameraOn && !!this.video;
    const micOn = this.prefs.micOn && !!this.audio;
    setToggle($("prejoin-mic"), micOn, this.micPresent !== false || !!this.audio, "mic");
    setToggle($("prejoin-camera"), camOn, this.cameraPresent !== false || !!this.video, "camera");
    const v = $("preview-video");
    if (camOn) {
      if (v.srcObject !== this.videoStream()) v.srcObject = this.videoStream();
      v.play().catch(() => {});
    } else {
      v.srcObject = null;
    }
    $("preview").dataset.camera = camOn ? "on" : "off";
    $("preview-off-text").textContent =
      this.cameraPresent === undefined ? "Starting your camera…" : this.video || this.cameraPresent ? "Your camera is off" : "No camera";
    const none = !this.audio && !this.video && !this.cameraPresent;
    $("prejoin-join").textContent = none ? "Join without camera and microphone" : "Join now";
  }

  videoStream() {
    if (!this.video) return null;
    if (!this._stream || this._stream.getVideoTracks()[0] !== this.video) this._stream = new MediaStream([this.video]);
    return this._stream;
  }

  // take ends the screen and hands over what the person chose: the tracks to send (the
  // caller owns them now), which devices exist, and whether to have media at all.
  take(chatOnly) {
    this.active = false;
    this.seq++;
    this.meter?.stop();
    this.meter = null;
    $("preview-video").srcObject = null;
    const choice = {
      chatOnly: !!chatOnly || !devices.hasMediaDevices(),
      audio: this.audio,
      video: this.video,
      micOn: this.prefs.micOn && !!this.audio,
      cameraOn: this.prefs.cameraOn && !!this.video,
      hasMic: !!this.audio,
      hasCamera: !!this.video || !!this.cameraPresent,
      prefs: { ...this.prefs },
    };
    if (choice.chatOnly) {
      devices.stopTracks(this.audio, this.video);
      choice.audio = choice.video = null;
      choice.hasMic = choice.hasCamera = false;
    }
    this.audio = this.video = null;
    return choice;
  }

  // close ends the screen without joining: every device is released.
  close() {
    this.active = false;
    this.seq++;
    this.meter?.stop();
    this.meter = null;
    this.stopTracks();
    $("preview-video").srcObject = null;
  }

  stopTracks() {
    devices.stopTracks(this.audio, this.video);
    this.audio = this.video = null;
  }
}

function partial(p, what) {
  const words = {
    denied: `The browser is not allowed to use your ${what}.`,
    none: `No ${what} was found.`,
    busy: `Your ${what} is in use by another application.`,
    error: `Your ${what} could not be started.`,
  };
  return { kind: "partial-" + p.kind, message: `${words[p.kind] || words.error} You can join without it.` };
}

// setToggle shows a device button's state: its name stays, aria-pressed says whether the
// device is on, and the visible state word and icon follow.
export function setToggle(btn, on, available, which) {
  btn.setAttribute("aria-pressed", on ? "true" : "false");
  btn.dataset.on = on ? "true" : "false";
  btn.disabled = !available;
  const label = btn.querySelector(".toggle-state");
  if (label) label.textContent = !available ? "Unavailable" : on ? "On" : "Off";
  const ic = btn.querySelector(".toggle-icon");
  if (ic) ic.replaceChildren(icon(on ? which : which + "-off"));
}

export function initialsOf(name) {
  const parts = String(name || "").trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
  return s.toUpperCase();
}
