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
