// The person's camera and microphone: opening them, the choice of device (remembered in
// localStorage), the microphone's level, and what to say when the browser refuses.
import { MSG } from "./messages.js";

const PREFS_KEY = "confab.media";

// The camera is asked for at up to 1280x720: large enough for three simulcast layers.
const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } };

// loadPrefs returns the remembered choice: {camera, microphone} device ids ("" for the
// default) and whether the camera and the microphone were on.
export function loadPrefs() {
  let p = {};
  try {
    p = JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") || {};
  } catch {
    p = {};
  }
  return {
    camera: typeof p.camera === "string" ? p.camera : "",
    microphone: typeof p.microphone === "string" ? p.microphone : "",
    cameraOn: p.cameraOn !== false,
    micOn: p.micOn !== false,
  };
}

export function savePrefs(p) {
  try {
    localStorage.setItem(
      PREFS_KEY,
      JSON.stringify({ camera: p.camera || "", microphone: p.microphone || "", cameraOn: !!p.cameraOn, micOn: !!p.micOn }),
    );
  } catch {
    // Storage full or disabled: the choice is simply not remembered.
  }
}

export function hasMediaDevices() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

export function canShareScreen() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
}

function deviceConstraint(id) {
  return id ? { deviceId: { exact: id } } : {};
}

// open asks for the camera and/or microphone. A remembered device that is gone is not an
// error: the default one is taken instead.
export async function open({ camera, microphone, video, audio }) {
  const c = {
    video: video ? { ...VIDEO, ...deviceConstraint(camera) } : false,
    audio: audio ? { ...deviceConstraint(microphone) } : false,
  };
  try {
    return await navigator.mediaDevices.getUserMedia(c);
  } catch (err) {
    if ((err.name === "OverconstrainedError" || err.name === "NotFoundError") && (camera || microphone)) {
      return navigator.mediaDevices.getUserMedia({ video: video ? VIDEO : false, audio: !!audio });
    }
    throw err;
  }
}

// openEach opens the camera and the microphone one after the other, so that a missing or
// busy camera does not cost the microphone (or the other way round). It returns the tracks
// it got and the errors of the ones it did not.
export async function openEach({ camera, microphone, video, audio }) {
  const out = { video: null, audio: null, videoError: null, audioError: null };
  if (video && audio) {
    try {
      const s = await open({ camera, microphone, video: true, audio: true });
      out.video = s.getVideoTracks()[0] || null;
      out.audio = s.getAudioTracks()[0] || null;
      return out;
    } catch (err) {
      if (err.name === "NotAllowedError" || err.name === "SecurityError") {
        out.videoError = out.audioError = err;
        return out;
      }
      // One of the two is missing or busy: try each alone.
    }
  }
  if (audio) {
    try {
      out.audio = (await open({ microphone, audio: true })).getAudioTracks()[0] || null;
    } catch (err) {
      out.audioError = err;
    }
  }
  if (video) {
    try {
      out.video = (await open({ camera, video: true })).getVideoTracks()[0] || null;
    } catch (err) {
      out.videoError = err;
    }
  }
  return out;
}

// listDevices returns the cameras and microphones the browser shows (labels only once the
// page may use them).
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return { cameras: [], microphones: [] };
  const all = await navigator.mediaDevices.enumerateDevices();
  const pick = (kind, fallback) =>
    all
      .filter((d) => d.kind === kind && d.deviceId !== "")
      .map((d, i) => ({ id: d.deviceId, label: d.label || `${fallback} ${i + 1}` }));
  return { cameras: pick("videoinput", "Camera"), microphones: pick("audioinput", "Microphone") };
}

// problem turns a getUserMedia failure into a kind of problem and words for the person.
export function problem(err) {
  switch (err && err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return { kind: "denied", message: MSG.mediaDenied };
    case "NotFoundError":
    case "OverconstrainedError":
      return { kind: "none", message: MSG.mediaNone };
    case "NotReadableError":
    case "AbortError":
      return { kind: "busy", message: MSG.mediaBusy };
  }
  return { kind: "error", message: MSG.mediaFailed };
}

// LevelMeter measures a microphone track's loudness, about ten times a second, as a number
// from 0 (silence) to 1 (full scale), for a level bar.
export class LevelMeter {
  constructor(track, onLevel) {
    this.onLevel = onLevel;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || !track) return;
    this.ctx = new Ctx();
    this.src = this.ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.src.connect(this.analyser);
    this.buf = new Float32Array(this.analyser.fftSize);
    this.timer = setInterval(() => this.measure(), 100);
    this.ctx.resume().catch(() => {});
  }

  measure() {
    if (!this.analyser) return;
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    const rms = Math.sqrt(sum / this.buf.length);
    // -60 dBFS .. 0 dBFS onto 0 .. 1: speech sits in the middle of the bar.
    const db = rms > 0 ? 20 * Math.log10(rms) : -100;
    this.onLevel(Math.max(0, Math.min(1, (db + 60) / 60)));
  }

  // resume starts a context the autoplay policy held back (call it from a click).
  resume() {
    this.ctx?.resume().catch(() => {});
  }

  stop() {
    clearInterval(this.timer);
    this.src?.disconnect();
    this.ctx?.close().catch(() => {});
    this.analyser = null;
  }
}

// stopTracks stops every track given (nulls skipped).
export function stopTracks(...tracks) {
  for (const t of tracks.flat()) if (t) t.stop();
}
