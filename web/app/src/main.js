// Confab's browser app: sign in or join as a guest, then take part in a meeting. The page's
// state is mirrored on <body> (data-view, data-state, data-error, data-user) for people
// using assistive technology (through the live regions) and for automated tests.
import { connect, resumable, resumeWindowMs } from "./session.js";
import { Meeting, listSpaces, lookup } from "./meeting.js";
import { MSG, UserError } from "./messages.js";
import { localpart } from "./username.js";
import { Prejoin } from "./prejoin.js";
import { Call } from "./call.js";

const $ = (id) => document.getElementById(id);

const app = {
  config: null, // {domain, websocketURL, callBridgeJid}
  xmpp: null,
  user: null, // {jid, local, guest}
  meeting: null,
  call: null, // the meeting's audio and video (call.js)
  prejoin: null, // the pre-join screen (prejoin.js)
  pending: null, // the meeting the pre-join screen is for: {jid, name, displayName}
  stopping: false,
  interrupted: null, // while the socket is lost and a resumption is awaited: {xmpp, timer}
};

function log(...args) {
  console.debug("[confab]", ...args);
}

// ---- view and state -------------------------------------------------------------------

const VIEWS = ["signin", "join", "prejoin", "meeting", "left"];

function setView(view) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  document.body.dataset.view = view;
  const signedIn = !!app.user && !app.user.guest;
  $("signout").hidden = !signedIn;
  $("whoami").hidden = !app.user;
  $("whoami").textContent = app.user ? (app.user.guest ? `Guest: ${app.user.name}` : app.user.jid) : "";
  document.body.dataset.user = app.user ? app.user.jid : "";
}

function setState(state, message = "") {
  document.body.dataset.state = state;
  document.body.dataset.error = message;
}

function showError(where, message) {
  const el = $(where);
  el.textContent = message;
  el.hidden = !message;
  setState("error", message);
}

function clearError(where) {
  const el = $(where);
  el.textContent = "";
  el.hidden = true;
}

function busy(form, on) {
  for (const el of form.querySelectorAll("button, input")) el.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
  if (on) setState("busy");
}

function markInvalid(input, invalid) {
  if (invalid) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

// ---- configuration -------------------------------------------------------------------

async function loadConfig() {
  const res = await fetch("/api/webapp/config", { credentials: "same-origin", cache: "no-store" });
  if (!res.ok) throw new UserError(MSG.unreachable);
  const c = await res.json();
  return {
    domain: c.domain || "",
    websocketURL: c.websocketURL || "",
    callBridgeJid: c.callBridgeJid || "",
  };
}

function randomResource() {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return "web-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// ---- XMPP session --------------------------------------------------------------------

async function openSession(username, password) {
  const xmpp = await connect({
    service: app.config.websocketURL,
    domain: app.config.domain,
    username,
    password,
    resource: randomResource(),
    onLog: log,
  });
  app.xmpp = xmpp;
  app.stopping = false;
  // Reconnecting is on from now: a lost socket is reopened when the session can be resumed
  // (known only once the server has answered <enable/>, which may come after "online");
  // connectionInterrupted ends the session at once when it cannot.
  xmpp.reconnect.start();
  xmpp.on("offline", () => sessionLost(xmpp));
  xmpp.on("disconnect", () => connectionInterrupted(xmpp));
  // After a lost socket, a resumed session is the same session; "online" means a new one,
  // which the meeting does not know: the old session could not be resumed.
  xmpp.streamManagement.on("resumed", () => connectionResumed(xmpp));
  xmpp.on("online", () => {
    if (app.interrupted && app.interrupted.xmpp === xmpp) sessionLost(xmpp);
  });
  return xmpp;
}

// connectionInterrupted: the socket is gone. A resumable session waits for @xmpp/client to
// reconnect and resume it, with the person told; any other ends.
function connectionInterrupted(xmpp) {
  if (app.xmpp !== xmpp || app.stopping) return;
  if (!resumable(xmpp) && !app.interrupted) {
    sessionLost(xmpp);
    return;
  }
  if (app.interrupted) return; // a reconnection attempt failed; @xmpp/client tries again
  log("connection lost; reconnecting to resume the session");
  const timer = setTimeout(() => sessionLost(xmpp), resumeWindowMs(xmpp));
  app.interrupted = { xmpp, timer };
  $("connection").hidden = false;
  document.body.dataset.connection = "reconnecting";
}

function connectionResumed(xmpp) {
  if (!app.interrupted || app.interrupted.xmpp !== xmpp) return;
  log("session resumed");
  clearInterrupted();
  app.call?.resumed();
}

function clearInterrupted() {
  if (app.interrupted) clearTimeout(app.interrupted.timer);
  app.interrupted = null;
  $("connection").hidden = true;
  document.body.dataset.connection = "";
}

function sessionLost(xmpp) {
  if (app.xmpp !== xmpp || app.stopping) return;
  log("session lost");
  clearInterrupted();
  xmpp.reconnect.stop();
  xmpp.stop().catch(() => {});
  app.xmpp = null;
  const wasGuest = app.user && app.user.guest;
  endMeetingUI();
  closePrejoin();
  app.user = null;
  if (wasGuest) {
    showJoinView();
    showError("join-error", MSG.connectionLost);
  } else {
    setView("signin");
    showError("signin-error", MSG.connectionLost);
  }
}

async function closeSession() {
  const xmpp = app.xmpp;
  app.stopping = true;
  app.xmpp = null;
  clearInterrupted();
  if (xmpp) {
    xmpp.reconnect.stop();
    try {
      await xmpp.stop();
    } catch (err) {
      log("stop:", err && err.message);
    }
  }
}

// ---- sign in -------------------------------------------------------------------------

async function onSignIn(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  clearError("signin-error");
  const userInput = $("signin-username");
  const passInput = $("signin-password");
  markInvalid(userInput, false);
  markInvalid(passInput, false);
  let username;
  try {
    username = localpart(userInput.value, app.config && app.config.domain);
  } catch (err) {
    markInvalid(userInput, true);
    showError("signin-error", err.userMessage || MSG.usernameNotRecognized);
    userInput.focus();
    return;
  }
  if (passInput.value === "") {
    markInvalid(passInput, true);
    showError("signin-error", MSG.enterPassword);
    passInput.focus();
    return;
  }
  busy(form, true);
  try {
    if (!app.config) app.config = await loadConfig();
    const xmpp = await openSession(username, passInput.value);
    const bare = xmpp.jid ? xmpp.jid.bare().toString() : `${username}@${app.config.domain}`;
    app.user = { jid: bare, local: username, guest: false, name: username };
    passInput.value = "";
    showJoinView();
    setState("busy");
    await refreshSpaces();
    setState("signed-in");
    $("join-callid").focus();
  } catch (err) {
    log("sign in failed:", err);
    showError("signin-error", err.userMessage || MSG.signInFailed);
    passInput.focus();
  } finally {
    busy(form, false);
  }
}

async function onSignOut() {
  closePrejoin();
  app.call?.close();
  if (app.meeting) await app.meeting.leave();
  endMeetingUI();
  await closeSession();
  app.user = null;
  setView("signin");
  clearError("signin-error");
  setState("ready");
  $("signin-username").focus();
}

// ---- join ----------------------------------------------------------------------------

function showJoinView() {
  const signedIn = !!app.user && !app.user.guest;
  $("spaces").hidden = !signedIn;
  $("signin-alt").hidden = signedIn;
  if (signedIn && !$("join-name").value) $("join-name").value = app.user.name;
  clearError("join-error");
  setView("join");
}

async function refreshSpaces() {
  const list = $("spaces-list");
  list.replaceChildren();
  let spaces = [];
  try {
    spaces = await listSpaces(app.xmpp, app.config.callBridgeJid);
  } catch (err) {
    log("spaces:", err);
    $("spaces-empty").textContent = err.userMessage || MSG.joinFailed;
    $("spaces-empty").hidden = false;
    return;
  }
  $("spaces-empty").textContent = "You have no spaces yet.";
  $("spaces-empty").hidden = spaces.length > 0;
  for (const s of spaces) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.testid = "space";
    b.dataset.spaceJid = s.jid;
    const name = document.createElement("span");
    name.className = "space-name";
    name.textContent = s.name;
    const meta = document.createElement("span");
    meta.className = "space-meta";
    meta.textContent = [s.callId && `Call ID ${s.callId}`, s.uri].filter(Boolean).join(" · ");
    const text = document.createElement("span");
    text.className = "space-text";
    text.append(name, meta);
    const go = document.createElement("span");
    go.className = "space-join";
    go.setAttribute("aria-hidden", "true");
    go.textContent = "Join";
    b.setAttribute("aria-label", `Join ${s.name}`);
    b.append(text, go);
    b.addEventListener("click", () => joinSpace(s));
    li.append(b);
    list.append(li);
  }
}

function displayName() {
  const input = $("join-name");
  const name = input.value.trim();
  markInvalid(input, !name);
  if (!name) {
    showError("join-error", MSG.enterName);
    input.focus();
    return "";
  }
  return name;
}

async function joinSpace(space) {
  clearError("join-error");
  const name = displayName();
  if (!name) return;
  showPrejoin(space.jid, space.name, name);
}

async function onJoin(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  clearError("join-error");
  const callInput = $("join-callid");
  const callId = callInput.value.replace(/[\s-]/g, "");
  const passcode = $("join-passcode").value.trim();
  markInvalid(callInput, !callId);
  if (!callId) {
    showError("join-error", MSG.enterCallID);
    callInput.focus();
    return;
  }
  const name = displayName();
  if (!name) return;
  busy(form, true);
  try {
    if (!app.config) app.config = await loadConfig();
    if (app.user && !app.user.guest) {
      const space = await lookup(app.xmpp, app.config.callBridgeJid, callId, passcode);
      showPrejoin(space.jid, space.name, name);
    } else {
      await joinAsGuest(callId, passcode, name);
    }
  } catch (err) {
    log("join failed:", err);
    showError("join-error", err.userMessage || MSG.joinFailed);
  } finally {
    busy(form, false);
  }
}

async function joinAsGuest(callId, passcode, name) {
  let res;
  try {
    res = await fetch("/api/webapp/guest", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      body: new URLSearchParams({ callId, passcode, name }),
    });
  } catch (err) {
    throw new UserError(MSG.unreachable, err);
  }
  let body = {};
  try {
    body = await res.json();
  } catch {
    // A proxy's HTML error page: the status decides below.
  }
  if (!res.ok) {
    switch (res.status) {
      case 403:
        throw new UserError(MSG.invalidCall);
      case 503:
        throw new UserError(MSG.noCallBridge);
      default:
        throw new UserError(body.error || MSG.joinFailed);
    }
  }
  const local = String(body.jid || "").split("@")[0];
  app.user = { jid: body.jid, local, guest: true, name: body.name || name };
  try {
    await openSession(local, body.password);
  } catch (err) {
    // The guest account is good for this meeting only: close it.
    await closeSession();
    app.user = null;
    setView("join");
    throw err;
  }
  showPrejoin(body.spaceJid, body.spaceName, body.name || name);
}

// ---- pre-join ----------------------------------------------------------------------------

// showPrejoin shows the pre-join screen for a meeting: camera preview, microphone level,
// devices; the join itself happens on "Join now" (or "Join with chat only").
function showPrejoin(spaceJid, spaceName, name) {
  app.pending = { jid: spaceJid, name: spaceName || spaceJid, displayName: name };
  if (!app.prejoin) app.prejoin = new Prejoin(log);
  setView("prejoin");
  setState("prejoin");
  for (const b of $("view-prejoin").querySelectorAll(".prejoin-side button")) b.disabled = false;
  $("prejoin-title").focus();
  app.prejoin.open(app.pending.name, name).catch((err) => log("devices:", err));
}

async function onPrejoinJoin(chatOnly) {
  const pending = app.pending;
  if (!pending || !app.xmpp) return;
  const buttons = $("view-prejoin").querySelectorAll(".prejoin-side button");
  for (const b of buttons) b.disabled = true;
  setState("busy");
  const choice = app.prejoin.take(chatOnly);
  app.pending = null;
  try {
    await enterMeeting(pending.jid, pending.name, pending.displayName, choice);
  } catch (err) {
    log("join failed:", err);
    for (const t of [choice.audio, choice.video]) t?.stop();
    if (app.user && app.user.guest) {
      // The guest account is good for this meeting only: close it.
      await closeSession();
      app.user = null;
    }
    showJoinView();
    showError("join-error", err.userMessage || MSG.joinFailed);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

async function onPrejoinCancel() {
  closePrejoin();
  if (app.user && app.user.guest) {
    await closeSession();
    app.user = null;
    showJoinView();
    setState("ready");
    $("join-callid").focus();
    return;
  }
  showJoinView();
  setState("signed-in");
  $("join-callid").focus();
}

function closePrejoin() {
  app.pending = null;
  app.prejoin?.close();
}

// ---- meeting -------------------------------------------------------------------------

async function enterMeeting(spaceJid, spaceName, name, choice) {
  $("participants").replaceChildren();
  $("chat-log").replaceChildren();
  $("participant-count").textContent = "0";
  $("meeting-name").textContent = spaceName || spaceJid;
  const m = new Meeting(app.xmpp, spaceJid, name, {
    onParticipant: (p, isNew) => {
      renderParticipant(p);
      app.call?.participant(p);
      if (m.joined && !p.self && isNew) systemLine(`${p.name} joined`);
    },
    onParticipantLeft: (p) => {
      const li = $("participants").querySelector(`li[data-participant-id="${CSS.escape(p.id)}"]`);
      li?.remove();
      updateCount();
      app.call?.participantLeft(p);
      systemLine(`${p.name} left`);
    },
    onChat: renderChat,
    onEnded: (msg) => {
      endMeetingUI();
      leftView(msg);
    },
  });
  app.meeting = m;
  try {
    await m.join();
  } catch (err) {
    app.meeting = null;
    m.left = true; // the join failed: no leave presence to send, nothing to tell
    throw err;
  }
  document.title = `${spaceName || "Meeting"} · Confab`;
  setView("meeting");
  setState("in-meeting");
  $("meeting-name").focus();
  // The media connects in the background: the meeting (chat, participants) is usable at
  // once, and a meeting without media still works.
  const call = new Call(app.xmpp, m, choice || { chatOnly: true }, log);
  app.call = call;
  call.start().catch((err) => log("media:", err));
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
  return s.toUpperCase();
}

function renderParticipant(p) {
  const list = $("participants");
  let li = list.querySelector(`li[data-participant-id="${CSS.escape(p.id)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.testid = "participant";
    li.dataset.participantId = p.id;
    list.append(li);
  }
  li.dataset.name = p.name;
  li.dataset.self = p.self ? "true" : "false";
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  avatar.textContent = initials(p.name);
  const who = document.createElement("span");
  who.className = "who";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = p.self ? `${p.name} (you)` : p.name;
  const role = document.createElement("span");
  role.className = "role";
  role.textContent = p.role === "owner" ? "Owner" : p.role === "guest" ? "Guest" : p.role === "member" ? "Member" : "";
  who.append(name, role);
  li.replaceChildren(avatar, who);
  updateCount();
}

function updateCount() {
  $("participant-count").textContent = String($("participants").children.length);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function renderChat(m) {
  const li = document.createElement("li");
  li.dataset.testid = "chat-message";
  li.dataset.from = m.name;
  li.dataset.self = m.self ? "true" : "false";
  const meta = document.createElement("div");
  meta.className = "chat-meta";
  meta.textContent = `${m.self ? "You" : m.name} · ${timeFormat.format(m.at)}`;
  const body = document.createElement("div");
  body.className = "chat-body";
  body.textContent = m.body;
  li.append(meta, body);
  appendToLog(li);
}

function systemLine(text) {
  const li = document.createElement("li");
  li.className = "system";
  li.textContent = text;
  appendToLog(li);
}

function appendToLog(li) {
  const log = $("chat-log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function onChat(ev) {
  ev.preventDefault();
  const input = $("chat-input");
  const body = input.value.trim();
  if (!body || !app.meeting) return;
  input.value = "";
  try {
    await app.meeting.say(body);
  } catch (err) {
    log("chat:", err);
    systemLine("Your message could not be sent");
    input.value = body;
  }
}

function endMeetingUI() {
  app.call?.close();
  app.call = null;
  app.meeting = null;
  document.title = "Confab";
}

function leftView(message) {
  $("left-message").textContent = message || "Thanks for joining.";
  setView("left");
  setState(message ? "error" : "left", message || "");
}

async function onLeave() {
  const m = app.meeting;
  if (!m) return;
  $("leave").disabled = true;
  // Everything the media held goes first: tracks stopped, connection closed. The
  // unavailable presence then ends the call leg, and with it the media on the server.
  app.call?.close();
  try {
    await m.leave();
  } finally {
    $("leave").disabled = false;
  }
  endMeetingUI();
  if (app.user && app.user.guest) {
    // A guest's account ends with the meeting.
    await closeSession();
    app.user = null;
    leftView("");
    return;
  }
  showJoinView();
  setState("busy");
  await refreshSpaces();
  setState("signed-in");
}

function onRejoin() {
  if (app.user && !app.user.guest) {
    showJoinView();
    setState("signed-in");
  } else {
    showJoinView();
    setState("ready");
  }
  $("join-callid").focus();
}

// ---- start ---------------------------------------------------------------------------

async function start() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("join-form").addEventListener("submit", onJoin);
  $("chat-form").addEventListener("submit", onChat);
  $("leave").addEventListener("click", onLeave);
  $("signout").addEventListener("click", onSignOut);
  $("rejoin").addEventListener("click", onRejoin);
  $("prejoin-join").addEventListener("click", () => onPrejoinJoin(false));
  $("prejoin-chat-only").addEventListener("click", () => onPrejoinJoin(true));
  $("prejoin-cancel").addEventListener("click", onPrejoinCancel);
  // For automation and tests: what the browser receives, by participant and source.
  window.confab = Object.freeze({ mediaStats: () => (app.call && app.call.media ? app.call.media.stats() : Promise.resolve(null)) });
  // A page closed mid-meeting: the XMPP server also leaves for us, this is only quicker.
  window.addEventListener("pagehide", () => {
    app.call?.close();
    app.prejoin?.close();
    app.meeting?.leave();
  });

  const params = new URLSearchParams(location.search);
  if (params.get("callId")) $("join-callid").value = params.get("callId");
  const guestPage = location.pathname === "/join";
  if (guestPage) showJoinView();
  else setView("signin");
  try {
    app.config = await loadConfig();
    if (app.config.domain) $("signin-example").textContent = `alice or alice@${app.config.domain}`;
    setState("ready");
  } catch (err) {
    log("config:", err);
    showError(guestPage ? "join-error" : "signin-error", err.userMessage || MSG.unreachable);
    return;
  }
  (guestPage ? $("join-callid") : $("signin-username")).focus();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
