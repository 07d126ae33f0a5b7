#!/usr/bin/python3
"""Stream management interop client for the internal/xmppd tests: slixmpp (python3-slixmpp)
with its xep_0198 plugin, over TCP with STARTTLS.

It logs in (the plugin enables stream management with resumption), then obeys one command a
line on stdin:

    drop    abort the TCP connection without closing the stream, as a lost network would
    resume  connect again; the plugin resumes the session (XEP-0198)
    quit    close the stream and exit

Every event prints one JSON object on stdout: online (jid, body = the resumption id),
message (body), disconnected, resumed, error.
"""

import argparse
import asyncio
import json
import logging
import sys

import slixmpp


def report(step, **fields):
    fields["step"] = step
    print(json.dumps(fields), flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid + "/slixmpp-sm", args.password, sasl_mech="SCRAM-SHA-256")
        self.args = args
        self.ca_certs = args.ca
        self.register_plugin("xep_0198")
        self.add_event_handler("sm_enabled", self.on_enabled)
        self.add_event_handler("session_resumed", lambda _e: report("resumed"))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_all_auth", lambda _e: report("error", error="authentication failed"))
        self.add_event_handler("disconnected", lambda _e: report("disconnected"))

    def on_enabled(self, _event):
        sm = self["xep_0198"]
        if not sm.sm_id:
            report("error", error="stream management enabled without a resumption id")
            return
        report("online", jid=str(self.boundjid), body=sm.sm_id)

    def on_message(self, msg):
        if msg["body"]:
            report("message", body=str(msg["body"]))


async def commands(c):
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "drop":
            c.transport.abort()
        elif line == "resume":
            c.connect((c.args.host, c.args.port))
        elif line in ("quit", ""):
            c.disconnect()
            await asyncio.wait_for(c.disconnected, 10)
            report("stopped")
            return


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    c = Client(args)
    c.connect((args.host, args.port))
    try:
        c.loop.run_until_complete(asyncio.wait_for(commands(c), 50))
    except asyncio.TimeoutError:
        report("error", error="timed out")
        sys.exit(1)


if __name__ == "__main__":
    main()
