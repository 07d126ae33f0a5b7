// The words a failed sign-in is shown with, for what the XMPP server and the Call Bridge send
// (docs/protocol.md, "Failures and their SASL conditions"; docs/signalling.md, step 1).
import { test } from "node:test";
import assert from "node:assert/strict";

import { signInMessage, isTemporary } from "../src/messages.js";

function sasl(condition, text = "") {
  return { name: "SASLError", condition, text };
}

test("each cause of a failed sign-in has its own words", () => {
  const cases = [
    [sasl("temporary-auth-failure", "No Call Bridge is connected to the XMPP server"), "No Call Bridge is available", true],
    [sasl("temporary-auth-failure", "The Call Bridge handling this login disconnected"), "The Call Bridge was interrupted while signing you in; try again", true],
    [sasl("temporary-auth-failure", "The Call Bridge did not answer in time"), "The Call Bridge did not answer in time; try again", true],
    [sasl("temporary-auth-failure", "Too many failed login attempts; try again in 42 seconds"), "Too many failed attempts; try again in 42 seconds", false],
    [sasl("temporary-auth-failure", "Too many failed login attempts; try again in 1 seconds"), "Too many failed attempts; try again in 1 second", false],
    [sasl("temporary-auth-failure", "The user directory is unavailable; please retry"), "The user directory is unavailable; try again later", true],
    [sasl("temporary-auth-failure", "No such login in progress (it may have expired); please retry"), "Signing in took too long; try again", true],
    [sasl("temporary-auth-failure", "The login could not be checked"), "Your sign-in could not be checked; try again later", true],
    [sasl("temporary-auth-failure", ""), "Signing in failed for a moment; try again", true],
    [sasl("not-authorized", "Invalid username or password"), "Wrong username or password", false],
    [sasl("account-disabled", "This account is disabled"), "This account is disabled", false],
    [sasl("malformed-request", "bad"), "Sign in failed", false],
    [{ name: "TimeoutError" }, "The meeting server did not answer in time", true],
    [{ code: "ECONNERROR" }, "The meeting server cannot be reached", true],
  ];
  for (const [err, want, temporary] of cases) {
    assert.equal(signInMessage(err), want, JSON.stringify(err));
    assert.equal(isTemporary(err), temporary, "temporary: " + JSON.stringify(err));
  }
});
