import { MSG, UserError } from "./messages.js";

// Characters a JID localpart may not hold (RFC 7622 §3.3.1), and white space and controls,
// which the UsernameCaseMapped profile does not allow either.
const FORBIDDEN = /[\s"&'/:<>@\u0000-\u001f\u007f]/u;

// localpart returns the username to sign in with, given what a person typed and the
// server's XMPP domain: "alice" and "alice@example.com" are both alice on example.com;
// "alice@elsewhere.org" or "a b" is not a username this server can recognise.
export function localpart(typed, domain) {
  let s = typed.trim();
  if (s === "") throw new UserError(MSG.enterUsername);
  const at = s.lastIndexOf("@");
  if (at >= 0) {
    const host = s.slice(at + 1).toLowerCase();
    if (!domain || host !== domain.toLowerCase()) {
      throw new UserError(MSG.usernameNotRecognized);
    }
    s = s.slice(0, at);
  }
  if (s === "" || FORBIDDEN.test(s) || new TextEncoder().encode(s).length > 1023) {
    throw new UserError(MSG.usernameNotRecognized);
  }
  return s;
}
