// Messages shown to people. Tests look for these strings.
export const MSG = Object.freeze({
  usernameNotRecognized: "Username is not recognized",
  signInFailed: "Sign in failed",
  wrongPassword: "Wrong username or password",
  accountDisabled: "This account is disabled",
  callBridgeSlow: "The Call Bridge did not answer in time; try again",
  callBridgeDropped: "The Call Bridge was interrupted while signing you in; try again",
  directoryUnavailable: "The user directory is unavailable; try again later",
  signInTooSlow: "Signing in took too long; try again",
  signInUnchecked: "Your sign-in could not be checked; try again later",
  signInTemporary: "Signing in failed for a moment; try again",
  signInAgain: "Your session ended. Sign in again to go back in.",
  invalidCall: "Invalid call ID or passcode",
  noCallBridge: "No Call Bridge is available",
  unreachable: "The meeting server cannot be reached",
  noAnswer: "The meeting server did not answer in time",
  connectionLost: "The connection to the meeting server was lost",
  connectionInterrupted: "The connection was interrupted; reconnecting…",
  // A meeting the Call Bridge lost (its link to the XMPP server dropped, it restarted), and
  // getting back into it.
  meetingInterrupted: "The meeting was interrupted; reconnecting…",
  meetingBack: "You are back in the meeting.",
  backByItself: "You will be back in by yourself.",
  meetingNotBack: "The meeting could not be rejoined. Try again, or leave.",
  endedByOrganiser: "The meeting was ended by the organiser",
  removed: "You were removed from the meeting",
  spaceGone: "This meeting's space no longer exists",
  // Chat messages that did not reach the meeting.
  chatNotSentInterrupted: "Not sent: the meeting is reconnecting",
  chatNoAnswer: "Not sent: the meeting server did not answer",
  chatNotSent: "Not sent",
  joinRefused: "You cannot join this meeting",
  joinFailed: "The meeting could not be joined; try again later",
  enterUsername: "Enter your username",
  enterPassword: "Enter your password",
  enterCallID: "Enter the call ID",
  enterName: "Enter your name",
  // Camera, microphone and the media connection.
  mediaDenied:
    "The browser is not allowed to use your camera and microphone. Allow them in the site settings (the icon beside the address), then try again, or join without them.",
  mediaNone: "No camera or microphone was found. Connect one and try again, or join without them.",
  mediaBusy: "Your camera or microphone is in use by another application. Close it and try again, or join without them.",
  mediaFailed: "Your camera and microphone could not be started. Try again, or join without them.",
  mediaUnsupported: "This browser cannot send or receive audio and video. You can still join the chat.",
  mediaUnavailable: "Audio and video are not available in this meeting; the chat still works.",
  mediaConnecting: "Connecting audio and video…",
  mediaReconnecting: "The audio and video connection was interrupted; reconnecting…",
  mediaLost: "Audio and video could not be reconnected. Leave and join again to restore them.",
  mutedByHost: "The host muted your microphone. You can unmute once the host allows it.",
  cameraOffByHost: "The host turned off your camera. You can turn it on once the host allows it.",
  hostAllowsAudio: "The host allowed you to unmute your microphone.",
  hostAllowsVideo: "The host allowed you to turn on your camera.",
  soundBlocked: "The browser blocked the meeting's sound until you allow it.",
  screenDenied: "Screen sharing was cancelled or is not allowed.",
  // The connection test (Test your connection).
  testDirect: "Your network is fine for meetings: audio and video can go straight to the meeting server.",
  testRelay: (how) => `Your network blocks the direct way (UDP), but audio and video can go ${how}. Meetings will work, perhaps with a little more delay.`,
  testBlockedNoTurn:
    "Your network blocks the connection the meeting needs (UDP), and this server offers no relay. Try another network (a mobile hotspot, say), or ask the meeting's organiser to have a TURN server set up.",
  testBlocked:
    "Your network blocks the connection the meeting needs (UDP), and the meeting's relay server could not be reached either. Try another network, or tell the meeting's organiser.",
  testFailed: "The test could not run",
  testUnsupported: "This browser cannot send or receive audio and video, so there is nothing to test.",
});

// signInMessage turns a failed XMPP sign-in into a message a person understands. SASL
// failures carry `condition` and `text` (RFC 6120 §6.5): the XMPP server and the Call Bridge
// say in the text which of several temporary failures it was (docs/signalling.md, step 1), and
// each gets its own words; "No Call Bridge is available" is said only when none is. A
// WebSocket that cannot connect carries code ECONNERROR; a timeout is a TimeoutError.
export function signInMessage(err) {
  if (err && err.userMessage) return err.userMessage;
  const condition = err && err.condition;
  const text = (err && err.text) || "";
  if (err && err.name === "SASLError") {
    switch (condition) {
      case "temporary-auth-failure":
        return temporaryFailure(text);
      case "not-authorized":
        return MSG.wrongPassword;
      case "account-disabled":
        return MSG.accountDisabled;
    }
    if (/username is not recognized/i.test(text)) return MSG.usernameNotRecognized;
    return MSG.signInFailed;
  }
  if (err && err.name === "StreamError") {
    if (condition === "policy-violation" || condition === "not-authorized") return MSG.signInFailed;
    return MSG.unreachable;
  }
  if (err && err.name === "TimeoutError") return MSG.noAnswer;
  if (err && err.code === "ECONNERROR") return MSG.unreachable;
  return MSG.signInFailed;
}

// temporaryFailure picks the words for a temporary-auth-failure by its text.
function temporaryFailure(text) {
  const wait = /try again in (\d+) seconds?/i.exec(text);
  if (/too many failed/i.test(text) && wait) return tooManyAttempts(Number(wait[1]));
  if (/no call bridge is connected/i.test(text)) return MSG.noCallBridge;
  if (/did not answer in time/i.test(text)) return MSG.callBridgeSlow;
  if (/disconnected/i.test(text)) return MSG.callBridgeDropped;
  if (/directory is unavailable/i.test(text)) return MSG.directoryUnavailable;
  if (/no such login in progress/i.test(text)) return MSG.signInTooSlow;
  if (/could not be checked/i.test(text)) return MSG.signInUnchecked;
  return MSG.signInTemporary;
}

export function tooManyAttempts(seconds) {
  const n = Math.max(1, Math.round(seconds));
  return `Too many failed attempts; try again in ${n} ${n === 1 ? "second" : "seconds"}`;
}

// isTemporary reports whether a failed sign-in may succeed by itself if tried again (the
// Call Bridge is restarting, a timeout), as opposed to a refusal (wrong password).
export function isTemporary(err) {
  if (!err) return false;
  if (err.name === "SASLError") return err.condition === "temporary-auth-failure" && !/too many failed/i.test(err.text || "");
  return err.name === "TimeoutError" || err.code === "ECONNERROR" || err.name === "StreamError" || !!err.temporary;
}

// requestMessage turns a failed meeting request (an IQ error, RFC 6120 §8.3) into a message.
export function requestMessage(err, fallback) {
  if (err && err.userMessage) return err.userMessage;
  switch (err && err.condition) {
    case "item-not-found":
    case "forbidden":
    case "not-authorized":
      return MSG.invalidCall;
    case "service-unavailable":
    case "remote-server-not-found":
    case "remote-server-timeout":
    case "recipient-unavailable":
      return MSG.noCallBridge;
  }
  if (err && err.name === "TimeoutError") return MSG.noAnswer;
  return fallback;
}

// UserError is an error whose message is meant for the person using the page.
export class UserError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = "UserError";
    this.userMessage = message;
    if (cause) this.cause = cause;
  }
}
