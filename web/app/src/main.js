// Confab's browser app: sign in or join as a guest, then take part in a meeting. The page's
// state is mirrored on <body> (data-view, data-state, data-error, data-user) for people
// using assistive technology (through the live regions) and for automated tests.
//
// Meetings never end silently: when the Call Bridge loses the meeting (its link to the XMPP
// server dropped, it restarted) the page says so and joins again by itself; when the XMPP
// session itself is lost, it signs in again with what it kept for this tab (keep.js: a
// user's SCRAM keys, a guest's rejoin credential), never asking for what was typed before.
import { xml } from "@xmpp/client";

import { connect, resumable, resumeWindowMs } from "./session.js";
import { Meeting, listSpaces, lookup, UNREACHABLE } from "./meeting.js";
import { MSG, UserError } from "./messages.js";
import { localpart } from "./username.js";
import { Prejoin } from "./prejoin.js";
import { Call } from "./call.js";
import { Chat } from "./chat.js";
import { Invite } from "./invite.js";
import { Rejoiner } from "./rejoin.js";
import { labels, shared } from "./names.js";
import * as keep from "./keep.js";
import { runConnectionTest } from "./conntest.js";

const $ = (id) => document.getElementById(id);

// How often the page asks the Call Bridge whether it still has us in the meeting.
const MEETING_CHECK_MS = 15000;

const app = {
  config: null, // {domain, websocketURL, callBridgeJid}
  xmpp: null,
  user: null, // {jid, local, guest, name, rejoin (a guest's credential), callId (a guest's)}
  meeting: null,
  call: null, // the meeting's audio and video (call.js)
  chat: null, // the meeting's chat (chat.js)
  invite: null, // the invite panel (invite.js)
  prejoin: null, // the pre-join screen (prejoin.js)
  pending: null, // the meeting the pre-join screen is for: {jid, name, displayName, callId, passcode, passcodeKnown}
  // current is the meeting the person is in, also while it is being rejoined: {jid, name,
  // displayName, callId, passcode, passcodeKnown, choice}
  current: null,
  stopping: false,
  interrupted: null, // while the socket is lost and a resumption is awaited: {xmpp, timer}
  rejoiner: null, // while getting back in (rejoin.js)
  left: null, // the meeting that ended, to join again from the left view
  checkTimer: null, // the meeting check (self-ping)
};

function log(...args) {
  console.debug("[confab]", ...args);
}

// ---- view and state -------------------------------------------------------------------

const VIEWS = ["signin", "join", "prejoin", "meeting", "left", "test"];

function setView(view) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  document.body.dataset.view = view;
  renderUser();
}

function renderUser() {
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

// fatal marks an error that no retry will mend; again, one to retry at once.
function fatal(message, cause) {
  const e = new UserError(message, cause);
  e.fatal = true;
  return e;
}

// ---- XMPP session --------------------------------------------------------------------

// openSession signs in with login (see session.js connect) and makes it the page's session.
async function openSession(login) {
  const holder = {};
  const xmpp = await connect({
    service: app.config.websocketURL,
    domain: app.config.domain,
    login,
    resource: randomResource(),
    onLog: log,
    // A user's keys are kept, to sign in again; a guest signs in again with its credential.
    onKeys: (keys) => {
      if (!login.renew) keep.keepUser(keys);
    },
    onFatal: (err) => sessionLost(holder.xmpp, err),
  });
  holder.xmpp = xmpp;
  app.xmpp = xmpp;
  app.stopping = false;
  // Reconnecting is on from now: a lost socket is reopened when the session can be resumed
  // (known only once the server has answered <enable/>, which may come after "online");
  // connectionInterrupted ends the session at once when it cannot.
  xmpp.reconnect.start();
  xmpp.on("offline", () => sessionLost(xmpp));
  xmpp.on("disconnect", () => connectionInterrupted(xmpp));
  // After a lost socket, a resumed session is the same session; "online" means a new one
  // (the old one could not be resumed, or the server restarted), which the meeting does
  // not know: it is joined again.
  xmpp.streamManagement.on("resumed", () => connectionResumed(xmpp));
  xmpp.on("online", () => {
    if (app.interrupted && app.interrupted.xmpp === xmpp) newSession(xmpp);
  });
  // The XMPP server says the Call Bridge is back (available presence from it, to those it
  // told it had gone): rejoin now rather than at the next retry.
  xmpp.on("stanza", (st) => {
    if (st.is("presence") && !st.attrs.type && st.attrs.from === app.config.callBridgeJid && app.rejoiner) {
      log("the Call Bridge is back");
      app.rejoiner.retryNow();
    }
  });
  return xmpp;
}

// userLogin is how a signed-in user signs in again: the SCRAM keys kept for this tab.
function userLogin() {
  const l = keep.userLogin();
  return l ? { username: l.keys.username, keys: l.keys } : null;
}

// guestLogin is how a guest signs in with a grant, and again (renew) with its rejoin
// credential.
function guestLogin(grant) {
  return { username: localOf(grant.jid), password: grant.password, renew: renewGuest };
}

async function renewGuest() {
  const g = await postRejoin(app.user && app.user.rejoin);
  applyGrant(g, app.user && app.user.callId);
  return { username: localOf(g.jid), password: g.password };
}

function localOf(jid) {
  return String(jid || "").split("@")[0];
}

// applyGrant makes a guest grant the page's guest, and keeps its rejoin credential.
function applyGrant(g, callId) {
  app.user = { jid: g.jid, local: localOf(g.jid), guest: true, name: g.name, rejoin: g.rejoin || "", callId: callId || "" };
  if (g.rejoin) keep.keepGuest(g.rejoin, g.rejoinExpires, callId);
  renderUser();
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
  renderBanner();
}

function connectionResumed(xmpp) {
  if (!app.interrupted || app.interrupted.xmpp !== xmpp) return;
  log("session resumed");
  clearInterrupted();
  app.call?.resumed();
  // The session is back; the meeting may not be (the Call Bridge may have restarted meanwhile).
  checkMeeting();
}

// newSession: the socket came back with a new session of the same client (the old one could
// not be resumed). A guest may have a new account (renewGuest). The meeting is joined again.
function newSession(xmpp) {
  log("a new session after the connection was lost");
  clearInterrupted();
  if (app.user && xmpp.jid) {
    app.user.jid = xmpp.jid.bare().toString();
    renderUser();
  }
  if (app.current) meetingInterrupted("new session");
}

function clearInterrupted() {
  if (app.interrupted) clearTimeout(app.interrupted.timer);
  app.interrupted = null;
  renderBanner();
}

// sessionLost: the session is over (not resumed in time, or signing in again was refused).
// With a way to sign in again, the page does so by itself; otherwise it says what happened.
function sessionLost(xmpp, err) {
  if (!xmpp || app.xmpp !== xmpp || app.stopping) return;
  log("session lost", err ? `(${err.message})` : "");
  clearInterrupted();
  xmpp.reconnect.stop();
  xmpp.stop().catch(() => {});
  app.xmpp = null;
  const refused = err && (err.fatal || err.refused || err.stale || err.name === "StaleKeysError" || (err.name === "SASLError" && err.condition !== "temporary-auth-failure"));
  if (!refused && canSignInAgain()) {
    if (app.current) meetingInterrupted("session lost");
    else startRejoin();
    return;
  }
  giveUp(err && err.fatal ? err : fatal(refusedMessage(err), err));
}

function refusedMessage(err) {
  if (!err) return MSG.connectionLost;
  if (err.refused) return err.userMessage;
  if (app.user && !app.user.guest) return MSG.signInAgain;
  return err.userMessage || MSG.connectionLost;
}

// canSignInAgain: the page kept a way to sign in without asking.
function canSignInAgain() {
  if (!app.user) return false;
  return app.user.guest ? !!app.user.rejoin : !!keep.userLogin();
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

// ---- getting back in ---------------------------------------------------------------------

// meetingInterrupted: the meeting was lost without anyone ending it. The person is told at
// once; the media stops (the devices stay on); the page joins again by itself.
function meetingInterrupted(why) {
  if (!app.current) return;
  log("meeting interrupted:", why);
  stopMeetingCheck();
  const m = app.meeting;
  app.meeting = null;
  m?.detach();
  if (app.call) app.current.choice = app.call.handover();
  app.call = null;
  app.chat?.interrupted();
  $("participants").setAttribute("aria-busy", "true");
  document.body.dataset.meeting = "interrupted";
  startRejoin();
}

function startRejoin() {
  if (app.rejoiner) {
    app.rejoiner.retryNow();
    return;
  }
  let freshAccount = false; // a guest tried a new account in this round
  app.rejoiner = new Rejoiner({
    step: async (attempt) => {
      log("getting back in, attempt", attempt);
      setBannerDetail(attempt > 1 ? `Trying again (attempt ${attempt})…` : MSG.backByItself);
      if (app.interrupted) throw new Error("the connection is being resumed");
      if (!app.xmpp) await signInAgain();
      if (!app.current) return;
      try {
        await enterMeeting(app.current, app.current.choice, true);
      } catch (err) {
        if (app.user && app.user.guest && err.condition === "forbidden" && !freshAccount) {
          // The Call Bridge no longer knows this guest account (it restarted): a new one,
          // with the rejoin credential.
          freshAccount = true;
          await closeSession();
          err.again = true;
          throw err;
        }
        if (err.condition === "item-not-found") throw fatal(MSG.spaceGone, err);
        if (err.condition === "forbidden") throw fatal(err.userMessage || MSG.joinRefused, err);
        throw err;
      }
    },
    onWait: (ms, attempt, err) => {
      log("not back yet:", err && err.message, `; next attempt in ${ms} ms`);
      setBannerDetail(ms ? `${MSG.backByItself} Trying again in ${Math.max(1, Math.round(ms / 1000))} s.` : MSG.backByItself);
    },
    onDone: () => {
      app.rejoiner = null;
      renderBanner();
      if (app.current) app.chat?.system(MSG.meetingBack);
    },
    onGiveUp: (err) => {
      app.rejoiner = null;
      log("giving up:", err && err.message);
      if (err && err.fatal) giveUp(err);
      else notBack();
    },
  });
  renderBanner();
  setState("reconnecting");
  app.rejoiner.start();
}

// signInAgain opens a new session with what this tab kept.
async function signInAgain() {
  if (!app.config) app.config = await loadConfig();
  if (app.user && app.user.guest) {
    const g = await postRejoin(app.user.rejoin); // refusals are fatal (err.refused)
    applyGrant(g, app.user.callId);
    try {
      await openSession(guestLogin(g));
    } catch (err) {
      if (err.temporary) throw err;
      throw fatal(err.userMessage, err);
    }
    return;
  }
  const login = userLogin();
  if (!login) throw fatal(MSG.signInAgain);
  try {
    await openSession(login);
  } catch (err) {
    if (err.temporary) throw err;
    throw fatal(err.stale ? MSG.signInAgain : err.userMessage, err);
  }
  if (!app.current) {
    showJoinView();
    await refreshSpaces();
    setState("signed-in");
  }
}

// notBack: ten minutes of trying were not enough; the person may try again or leave.
function notBack() {
  setBannerDetail("");
  $("connection-text").textContent = MSG.meetingNotBack;
  $("connection-retry").hidden = false;
  document.body.dataset.connection = "failed";
  setState("error", MSG.meetingNotBack);
}

function onRetryNow() {
  $("connection-retry").hidden = true;
  startRejoin();
}

// giveUp: getting back in is refused for good (a changed password, an expired rejoin
// credential, a deleted space). The person is told why and what to do.
function giveUp(err) {
  const msg = (err && err.userMessage) || MSG.connectionLost;
  const wasGuest = app.user && app.user.guest;
  const callId = (app.current && app.current.callId) || (app.user && app.user.callId) || "";
  stopMeetingCheck();
  app.rejoiner?.cancel();
  app.rejoiner = null;
  app.call?.close();
  app.call = null;
  app.meeting?.detach();
  app.meeting = null;
  for (const t of app.current && app.current.choice ? [app.current.choice.audio, app.current.choice.video] : []) t?.stop();
  app.current = null;
  keep.keepMeeting(null);
  closePrejoin();
  if (app.xmpp) closeSession();
  document.body.dataset.meeting = "";
  document.title = "Confab";
  renderBanner();
  if (wasGuest) {
    keep.forgetLogin();
    app.user = null;
    showJoinView();
    if (callId) $("join-callid").value = callId;
    showError("join-error", msg);
    return;
  }
  const username = app.user ? app.user.local : "";
  app.user = null;
  keep.forgetLogin();
  setView("signin");
  if (username) $("signin-username").value = username;
  showError("signin-error", msg);
  (username ? $("signin-password") : $("signin-username")).focus();
}

// renderBanner shows what is being mended: the meeting (rejoining), or only the connection
// (resuming the session).
function renderBanner() {
  const el = $("connection");
  let text = "";
  let kind = "";
  if (app.rejoiner) {
    text = app.current ? MSG.meetingInterrupted : MSG.connectionInterrupted;
    kind = app.current ? "rejoining" : "reconnecting";
  } else if (app.interrupted) {
    text = MSG.connectionInterrupted;
    kind = "reconnecting";
  }
  if (text) $("connection-text").textContent = text;
  $("connection-retry").hidden = true;
  el.hidden = !text;
  document.body.dataset.connection = kind;
  if (!text) setBannerDetail("");
}

function setBannerDetail(text) {
  $("connection-detail").textContent = text;
  $("connection-detail").hidden = !text;
}

// ---- meeting check -------------------------------------------------------------------------

function startMeetingCheck() {
  stopMeetingCheck();
  app.checkTimer = setInterval(checkMeeting, MEETING_CHECK_MS);
}

function stopMeetingCheck() {
  clearInterval(app.checkTimer);
  app.checkTimer = null;
}

// checkMeetingSoon checks the meeting now, unless it was checked a moment ago: media trouble
// (a refused request, a connection that fails) often means the Call Bridge lost the meeting,
// and the person should be told at once rather than at the next regular check.
let lastCheck = 0;
function checkMeetingSoon() {
  if (Date.now() - lastCheck < 3000) return;
  checkMeeting();
}

// checkMeeting asks the Call Bridge whether it still has us in the meeting: without an
// answer, or with "no", the meeting was interrupted.
async function checkMeeting() {
  const m = app.meeting;
  if (!m || !app.xmpp || app.interrupted || app.rejoiner) return;
  lastCheck = Date.now();
  const r = await m.ping();
  if (r !== "ok" && app.meeting === m && !app.interrupted) meetingInterrupted(`meeting check: ${r}`);
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
    keep.forgetLogin();
    const xmpp = await openSession({ username, password: passInput.value });
    signedIn(xmpp, username);
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

function signedIn(xmpp, username) {
  const bare = xmpp.jid ? xmpp.jid.bare().toString() : `${username}@${app.config.domain}`;
  app.user = { jid: bare, local: username, guest: false, name: username };
}

async function onSignOut() {
  closePrejoin();
  app.rejoiner?.cancel();
  app.rejoiner = null;
  stopMeetingCheck();
  app.call?.close();
  app.call = null;
  if (app.meeting) await app.meeting.leave();
  endMeetingUI();
  keep.forgetLogin();
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
  if (!$("join-name").value) $("join-name").value = keep.name();
  // A signed-in user may leave the name empty: the account's name is used.
  $("join-name").required = !signedIn;
  $("join-name-hint").hidden = !signedIn;
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

// displayName reads the name field: {ok, name}. A guest must give one; a signed-in user may
// leave it empty.
function displayName() {
  const input = $("join-name");
  const name = input.value.trim();
  const needed = !app.user || app.user.guest;
  markInvalid(input, needed && !name);
  if (needed && !name) {
    showError("join-error", MSG.enterName);
    input.focus();
    return { ok: false, name: "" };
  }
  keep.keepName(name);
  return { ok: true, name };
}

async function joinSpace(space) {
  clearError("join-error");
  const n = displayName();
  if (!n.ok) return;
  showPrejoin({ jid: space.jid, name: space.name, displayName: n.name, callId: space.callId, passcode: space.passcode, passcodeKnown: !!space.passcode });
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
  const n = displayName();
  if (!n.ok) return;
  busy(form, true);
  try {
    if (!app.config) app.config = await loadConfig();
    if (app.user && !app.user.guest) {
      const space = await lookup(app.xmpp, app.config.callBridgeJid, callId, passcode);
      showPrejoin({ jid: space.jid, name: space.name, displayName: n.name, callId, passcode, passcodeKnown: true });
    } else {
      await joinAsGuest(callId, passcode, n.name);
    }
  } catch (err) {
    log("join failed:", err);
    showError("join-error", err.userMessage || MSG.joinFailed);
  } finally {
    busy(form, false);
  }
}

// postGuest posts a guest form to path and returns the grant, or throws a UserError: refused
// (err.refused: a wrong passcode, an expired credential) or temporary (err.temporary).
async function postGuest(path, form) {
  let res;
  try {
    res = await fetch(path, { method: "POST", credentials: "same-origin", cache: "no-store", body: new URLSearchParams(form) });
  } catch (err) {
    const e = new UserError(MSG.unreachable, err);
    e.temporary = true;
    throw e;
  }
  let body = {};
  try {
    body = await res.json();
  } catch {
    // A proxy's HTML error page: the status decides below.
  }
  if (res.ok) return body;
  let e;
  switch (res.status) {
    case 403:
      e = new UserError(body.reason ? body.error : MSG.invalidCall);
      e.refused = true;
      e.reason = body.reason || "";
      break;
    case 503:
      e = new UserError(MSG.noCallBridge);
      e.temporary = true;
      break;
    case 429:
      e = new UserError(body.error || MSG.joinFailed);
      break;
    default:
      e = new UserError(body.error || MSG.joinFailed);
      e.temporary = res.status >= 500;
  }
  throw e;
}

function postRejoin(credential) {
  if (!credential) return Promise.reject(fatal(MSG.connectionLost));
  return postGuest("/api/webapp/guest/rejoin", { credential });
}

async function joinAsGuest(callId, passcode, name) {
  const body = await postGuest("/api/webapp/guest", { callId, passcode, name });
  applyGrant(body, callId);
  try {
    await openSession(guestLogin(body));
  } catch (err) {
    // The guest account is good for this meeting only: close it.
    await closeSession();
    keep.forgetLogin();
    app.user = null;
    setView("join");
    throw err;
  }
  showPrejoin({ jid: body.spaceJid, name: body.spaceName, displayName: body.name || name, callId, passcode, passcodeKnown: true });
}

// ---- pre-join ----------------------------------------------------------------------------

// showPrejoin shows the pre-join screen for a meeting: camera preview, microphone level,
// devices; the join itself happens on "Join now" (or "Join with chat only").
function showPrejoin(meeting) {
  app.pending = { ...meeting, name: meeting.name || meeting.jid };
  keep.keepMeeting({ jid: meeting.jid, name: app.pending.name, callId: meeting.callId });
  if (!app.prejoin) app.prejoin = new Prejoin(log);
  setView("prejoin");
  setState("prejoin");
  for (const b of $("view-prejoin").querySelectorAll(".prejoin-side button")) b.disabled = false;
  $("prejoin-title").focus();
  document.body.dataset.prejoin = "opening";
  app.prejoin
    .open(app.pending.name, meeting.displayName || (app.user && app.user.name) || "")
    .catch((err) => log("devices:", err))
    .finally(() => {
      // The devices answered and the screen is laid out (for people, and tests that click).
      if (document.body.dataset.view === "prejoin") document.body.dataset.prejoin = "ready";
    });
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
    app.chat?.clear();
    await enterMeeting(pending, choice, false);
  } catch (err) {
    log("join failed:", err);
    for (const t of [choice.audio, choice.video]) t?.stop();
    keep.keepMeeting(null);
    if (app.user && app.user.guest) {
      // The guest account is good for this meeting only: close it.
      await closeSession();
      keep.forgetLogin();
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
  keep.keepMeeting(null);
  if (app.user && app.user.guest) {
    await closeSession();
    keep.forgetLogin();
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

// enterMeeting joins meeting (the pending one, or the current one again when rejoin) and
// shows it; the media starts with choice. It rejects with the join's UserError (its
// condition, when the Call Bridge refused).
async function enterMeeting(meeting, choice, rejoin) {
  if (!rejoin) {
    $("participants").replaceChildren();
    $("participant-count").textContent = "0";
  }
  $("meeting-name").textContent = meeting.name || meeting.jid;
  if (!app.chat) app.chat = new Chat({ send: (body, id) => sendChat(body, id), canSend: () => !!app.meeting && !app.rejoiner && !app.interrupted, log });
  const m = new Meeting(app.xmpp, meeting.jid, meeting.displayName, {
    onParticipant: (p, isNew) => {
      renderParticipants(m);
      if (m.joined && !p.self && isNew) app.chat.system(`${labelOf(m, p)} joined`);
    },
    onParticipantLeft: (p) => {
      const li = $("participants").querySelector(`li[data-participant-id="${CSS.escape(p.id)}"]`);
      li?.remove();
      renderParticipants(m);
      app.call?.participantLeft(p);
      app.chat.system(`${p.name} left`);
    },
    onChat: (c) => app.chat.incoming({ ...c, label: labelOf(m, m.participants.get(c.from) || { id: c.from, name: c.name }) }),
    onChatError: (id, text, condition) =>
      app.chat.failed(id, text ? `Not sent: ${text}` : UNREACHABLE.has(condition) ? MSG.chatNotSentInterrupted : MSG.chatNotSent),
    onEnded: (msg, reason) => meetingEnded(msg, reason),
    onInterrupted: (why) => meetingInterrupted(why),
  });
  if (rejoin) {
    // Whatever the Call Bridge may still hold of us goes first (the check may have failed
    // for want of an answer only): one unavailable presence, then the join.
    await app.xmpp.send(m.leavePresence()).catch(() => {});
  }
  try {
    await m.join();
  } catch (err) {
    m.left = true; // the join failed: no leave presence to send, nothing to tell
    throw err;
  }
  app.meeting = m;
  app.current = { ...meeting, choice: null };
  keep.keepMeeting({ jid: meeting.jid, name: meeting.name, callId: meeting.callId, chatOnly: !!(choice && choice.chatOnly) });
  $("participants").removeAttribute("aria-busy");
  document.body.dataset.meeting = "live";
  document.title = `${meeting.name || "Meeting"} · Confab`;
  setView("meeting");
  setState("in-meeting");
  app.invite?.show({ callId: meeting.callId, passcode: meeting.passcode, passcodeKnown: !!meeting.passcodeKnown });
  if (!rejoin) $("meeting-name").focus();
  startMeetingCheck();
  // The media connects in the background: the meeting (chat, participants) is usable at
  // once, and a meeting without media still works.
  const call = new Call(app.xmpp, m, choice || { chatOnly: true }, log);
  call.onTrouble = checkMeetingSoon;
  app.call = call;
  call.start().catch((err) => log("media:", err));
  renderParticipants(m); // the tiles get their labels too
}

async function sendChat(body, id) {
  if (!app.meeting) throw new Error("not in the meeting");
  await app.meeting.say(body, id);
}

function labelOf(m, p) {
  return labels(m.participants.values()).get(p.id) || p.name;
}

// renderParticipants shows everyone, with "Ada (2)" beside another Ada (and a user's
// address, which tells them apart for good). After a rejoin, the first roster replaces what
// was shown of the meeting that was lost.
function renderParticipants(m) {
  const names = labels(m.participants.values());
  for (const li of [...$("participants").children]) {
    if (!m.participants.has(li.dataset.participantId)) li.remove();
  }
  for (const p of m.participants.values()) renderParticipant(p, names.get(p.id) || p.name, shared(m.participants.values(), p));
  updateCount();
  if (app.meeting === m) for (const p of m.participants.values()) app.call?.participant({ ...p, label: names.get(p.id) });
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
  return s.toUpperCase();
}

function renderParticipant(p, label, sharedName) {
  const list = $("participants");
  let li = list.querySelector(`li[data-participant-id="${CSS.escape(p.id)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.testid = "participant";
    li.dataset.participantId = p.id;
    list.append(li);
  }
  li.dataset.name = p.name;
  li.dataset.label = label;
  li.dataset.self = p.self ? "true" : "false";
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  avatar.textContent = initials(p.name);
  const who = document.createElement("span");
  who.className = "who";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = p.self ? `${p.name} (you)` : label;
  const role = document.createElement("span");
  role.className = "role";
  const roleWord = p.role === "owner" ? "Owner" : p.role === "guest" ? "Guest" : p.role === "member" ? "Member" : "";
  // Two of the same name: a user's address tells them apart.
  role.textContent = sharedName && p.role !== "guest" && p.jid ? [roleWord, p.jid].filter(Boolean).join(" · ") : roleWord;
  who.append(name, role);
  const state = li.querySelector(".media-state");
  li.replaceChildren(avatar, who);
  if (state) li.append(state);
}

function updateCount() {
  $("participant-count").textContent = String($("participants").children.length);
}

function onChat(ev) {
  ev.preventDefault();
  const input = $("chat-input");
  const body = input.value.trim();
  if (!body || !app.current || !app.chat) return;
  input.value = "";
  const self = app.meeting && app.meeting.participants.get(app.meeting.selfId);
  app.chat.submit(body, self ? self.name : app.current.displayName);
}

function endMeetingUI() {
  stopMeetingCheck();
  app.call?.close();
  app.call = null;
  app.meeting = null;
  app.current = null;
  keep.keepMeeting(null);
  document.body.dataset.meeting = "";
  document.title = "Confab";
}

// meetingEnded: the Call Bridge ended our participation and said why (an administrator
// ended the meeting, or removed us). A guest's account went with it: the guest is signed out,
// and, unless removed, may come back with its rejoin credential ("Join again").
function meetingEnded(msg, reason) {
  const cur = app.current;
  app.rejoiner?.cancel();
  app.rejoiner = null;
  endMeetingUI();
  renderBanner();
  const guest = app.user && app.user.guest;
  if (guest) {
    closeSession();
    app.user = null;
    if (reason === "removed") keep.forgetLogin();
  }
  const canReturn = reason === "ended" && cur && (guest ? !!keep.guestLogin() : !!app.xmpp);
  app.left = canReturn ? { ...cur, choice: null } : null;
  leftView(msg, reason);
}

function leftView(message, reason = "") {
  $("left-title").textContent = reason === "ended" ? "The meeting has ended" : reason === "removed" ? "You are no longer in the meeting" : "You left the meeting";
  $("left-message").textContent = message || "Thanks for joining.";
  $("join-again").hidden = !app.left;
  setView("left");
  $("left-title").focus();
  setState(message ? "ended" : "left", message || "");
}

async function onLeave() {
  const m = app.meeting;
  if (!app.current) return;
  $("leave").disabled = true;
  app.rejoiner?.cancel();
  app.rejoiner = null;
  renderBanner();
  // Everything the media held goes first: tracks stopped, connection closed. The
  // unavailable presence then ends the call leg, and with it the media on the server.
  app.call?.close();
  for (const t of app.current.choice ? [app.current.choice.audio, app.current.choice.video] : []) t?.stop();
  try {
    if (m) await m.leave();
    else if (app.xmpp) {
      // Left while rejoining: whatever the Call Bridge may still hold of us goes too.
      await app.xmpp.send(xml("presence", { type: "unavailable", to: app.current.jid })).catch(() => {});
    }
  } finally {
    $("leave").disabled = false;
  }
  endMeetingUI();
  app.left = null;
  if (app.user && app.user.guest) {
    // A guest's account ends with the meeting.
    keep.forgetLogin();
    await closeSession();
    app.user = null;
    leftView("");
    return;
  }
  if (!app.xmpp) {
    // Left while the session was being restored.
    setView("signin");
    setState("ready");
    return;
  }
  showJoinView();
  setState("busy");
  await refreshSpaces();
  setState("signed-in");
}

function onRejoin() {
  app.left = null;
  if (app.user && !app.user.guest) {
    showJoinView();
    setState("signed-in");
  } else {
    showJoinView();
    setState("ready");
  }
  $("join-callid").focus();
}

// onJoinAgain goes back to the meeting that ended, through the pre-join screen: a user on its
// session, a guest with its rejoin credential (a new account; the old one ended with the
// meeting).
async function onJoinAgain() {
  const again = app.left;
  if (!again) return onRejoin();
  app.left = null;
  $("join-again").disabled = true;
  try {
    if (!app.user) {
      const g = keep.guestLogin();
      if (!g) throw fatal(MSG.joinFailed);
      app.user = { guest: true, rejoin: g.rejoin, callId: g.callId, name: again.displayName };
      await signInAgain();
    }
    showPrejoin(again);
  } catch (err) {
    log("join again:", err);
    if (app.user && app.user.guest) {
      keep.forgetLogin();
      app.user = null;
    }
    showJoinView();
    if (again.callId) $("join-callid").value = again.callId;
    showError("join-error", err.userMessage || MSG.joinFailed);
  } finally {
    $("join-again").disabled = false;
  }
}

// ---- Test your connection ------------------------------------------------------------

function pathItem(path) {
  let li = document.querySelector(`#test-paths li[data-path="${CSS.escape(path.id)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.path = path.id;
    const name = document.createElement("span");
    name.className = "path-name";
    name.textContent = path.name;
    const result = document.createElement("span");
    result.className = "path-result";
    const detail = document.createElement("span");
    detail.className = "path-detail";
    li.append(name, result, detail);
    $("test-paths").append(li);
  }
  return li;
}

const RESULT_WORDS = { waiting: "Waiting", running: "Testing…", ok: "Works", failed: "Does not work" };

async function onTestStart() {
  const btn = $("test-start");
  btn.disabled = true;
  $("test-paths").replaceChildren();
  const verdict = $("test-verdict");
  verdict.hidden = true;
  document.body.dataset.connTest = "running";
  setState("busy");
  try {
    if (typeof RTCPeerConnection !== "function") throw new Error(MSG.testUnsupported);
    const res = await runConnectionTest({
      log,
      onPath: (path, state, detail) => {
        const li = pathItem(path);
        li.dataset.result = state;
        li.querySelector(".path-result").textContent = RESULT_WORDS[state] || state;
        li.querySelector(".path-detail").textContent = detail;
      },
    });
    verdict.textContent = res.message;
    verdict.dataset.verdict = res.verdict;
    setState("ready");
  } catch (err) {
    log("connection test:", err);
    verdict.textContent = `${MSG.testFailed}: ${err.message || err}`;
    verdict.dataset.verdict = "error";
    setState("error", verdict.textContent);
  } finally {
    verdict.hidden = false;
    document.body.dataset.connTest = "done";
    btn.disabled = false;
    btn.textContent = "Test again";
  }
}

// ---- start ---------------------------------------------------------------------------

// restore brings back, after a reload of the page, the session this tab had: a user signed
// in again with its kept keys, a guest with its rejoin credential, and the meeting it was in
// shown on the pre-join screen (the devices are asked for again). It reports whether it did.
async function restore() {
  const saved = keep.meeting();
  const user = keep.userLogin();
  const guest = keep.guestLogin();
  if (!user && !guest) return false;
  setState("busy");
  try {
    if (guest) {
      app.user = { guest: true, rejoin: guest.rejoin, callId: guest.callId, name: "" };
      const g = await postRejoin(guest.rejoin);
      applyGrant(g, guest.callId);
      await openSession(guestLogin(g));
      showPrejoin({ jid: g.spaceJid, name: g.spaceName, displayName: g.name, callId: guest.callId, passcodeKnown: false });
      return true;
    }
    app.user = { jid: "", local: user.keys.username, guest: false, name: user.keys.username };
    const xmpp = await openSession(userLogin());
    signedIn(xmpp, user.keys.username);
    showJoinView();
    await refreshSpaces();
    if (saved) showPrejoin({ jid: saved.jid, name: saved.name, displayName: $("join-name").value.trim(), callId: saved.callId, passcodeKnown: false });
    else setState("signed-in");
    return true;
  } catch (err) {
    log("restore:", err);
    const wasGuest = app.user && app.user.guest;
    const username = app.user && app.user.local;
    app.user = null;
    if (err.temporary) {
      // Keep what was kept: a reload later may work.
      if (wasGuest) showJoinView();
      else setView("signin");
    } else {
      keep.forgetLogin();
      if (wasGuest) showJoinView();
      else setView("signin");
    }
    if (wasGuest) {
      if (guest.callId) $("join-callid").value = guest.callId;
      showError("join-error", err.userMessage || MSG.joinFailed);
    } else {
      if (username) $("signin-username").value = username;
      showError("signin-error", err.stale ? MSG.signInAgain : err.userMessage || MSG.signInFailed);
    }
    return true;
  }
}

async function start() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("join-form").addEventListener("submit", onJoin);
  $("chat-form").addEventListener("submit", onChat);
  $("leave").addEventListener("click", onLeave);
  $("signout").addEventListener("click", onSignOut);
  $("rejoin").addEventListener("click", onRejoin);
  $("join-again").addEventListener("click", onJoinAgain);
  $("connection-retry").addEventListener("click", onRetryNow);
  $("prejoin-join").addEventListener("click", () => onPrejoinJoin(false));
  $("prejoin-chat-only").addEventListener("click", () => onPrejoinJoin(true));
  $("prejoin-cancel").addEventListener("click", onPrejoinCancel);
  app.invite = new Invite(log);
  $("test-start").addEventListener("click", onTestStart);
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
  $("join-name").value = keep.name();
  if (location.pathname === "/test") {
    setView("test");
    setState("ready");
    $("test-title").focus();
    return;
  }
  const guestPage = location.pathname === "/join";
  if (guestPage) showJoinView();
  else setView("signin");
  try {
    app.config = await loadConfig();
    if (app.config.domain) $("signin-example").textContent = `alice or alice@${app.config.domain}`;
  } catch (err) {
    log("config:", err);
    showError(guestPage ? "join-error" : "signin-error", err.userMessage || MSG.unreachable);
    return;
  }
  if (await restore()) return;
  setState("ready");
  (guestPage ? $("join-callid") : $("signin-username")).focus();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
