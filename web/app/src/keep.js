// What the app keeps so that people get back in without typing: for the browser tab's
// session (sessionStorage, gone when the tab closes) the way to sign in again — a user's
// SCRAM keys (never the password; see scram.js), a guest's rejoin credential — and the
// meeting the tab is in; across sessions (localStorage) only the name the person typed.
// Storage the browser refuses (private modes, quotas) is treated as empty.

const LOGIN = "confab.login"; // {kind: "user", keys} | {kind: "guest", rejoin, expires, callId}
const MEETING = "confab.meeting"; // {jid, name, callId, chatOnly}
const NAME = "confab.name";

function read(store, key) {
  try {
    const v = store.getItem(key);
    return v ? JSON.parse(v) : null;
  } catch {
    return null;
  }
}

function write(store, key, value) {
  try {
    if (value === null || value === undefined) store.removeItem(key);
    else store.setItem(key, JSON.stringify(value));
  } catch {
    // not kept: the person will be asked again
  }
}

// userKeys returns the kept SCRAM keys of the signed-in user, or null.
export function userLogin() {
  const l = read(sessionStorage, LOGIN);
  return l && l.kind === "user" && l.keys && l.keys.username ? l : null;
}

export function keepUser(keys) {
  write(sessionStorage, LOGIN, keys ? { kind: "user", keys } : null);
}

// guestLogin returns the kept rejoin credential of a guest while it is good, or null.
export function guestLogin(now = Date.now()) {
  const l = read(sessionStorage, LOGIN);
  if (!l || l.kind !== "guest" || !l.rejoin) return null;
  if (l.expires && Date.parse(l.expires) <= now) {
    write(sessionStorage, LOGIN, null);
    return null;
  }
  return l;
}

export function keepGuest(rejoin, expires, callId) {
  write(sessionStorage, LOGIN, rejoin ? { kind: "guest", rejoin, expires: expires || "", callId: callId || "" } : null);
}

export function forgetLogin() {
  write(sessionStorage, LOGIN, null);
  write(sessionStorage, MEETING, null);
}

// meeting is the meeting this tab is in (to go back to after a reload), or null.
export function meeting() {
  const m = read(sessionStorage, MEETING);
  return m && m.jid ? m : null;
}

export function keepMeeting(m) {
  write(sessionStorage, MEETING, m ? { jid: m.jid, name: m.name || "", callId: m.callId || "", chatOnly: !!m.chatOnly } : null);
}

// name is the display name the person last typed ("" when none).
export function name() {
  try {
    return localStorage.getItem(NAME) || "";
  } catch {
    return "";
  }
}

export function keepName(n) {
  try {
    if (n) localStorage.setItem(NAME, n);
  } catch {
    // not remembered
  }
}
