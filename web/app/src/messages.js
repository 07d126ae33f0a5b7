// Messages shown to people. Tests look for these strings.
export const MSG = Object.freeze({
  usernameNotRecognized: "Username is not recognized",
  signInFailed: "Sign in failed",
  invalidCall: "Invalid call ID or passcode",
  noCallBridge: "No Call Bridge is available",
  unreachable: "The meeting server cannot be reached",
  noAnswer: "The meeting server did not answer in time",
  connectionLost: "The connection to the meeting server was lost",
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
});

// signInMessage turns a failed XMPP sign-in into a message a person understands. SASL
// failures carry `condition` and `text` (RFC 6120 §6.5); a WebSocket that cannot connect
// carries code ECONNERROR; a timeout is a TimeoutError.
export function signInMessage(err) {
  if (err && err.userMessage) return err.userMessage;
  const condition = err && err.condition;
  const text = (err && err.text) || "";
  if (err && err.name === "SASLError") {
    if (condition === "temporary-auth-failure") return MSG.noCallBridge;
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
