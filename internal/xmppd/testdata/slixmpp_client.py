#!/usr/bin/python3
"""Interop client for the internal/xmppd tests, written with slixmpp (python3-slixmpp).

It logs in over TCP with STARTTLS and SCRAM-SHA-256 (so the exchange goes through the login
relay to the test Call Bridge), binds the resource "slixmpp", sends a chat message to --peer,
pings --component and the server (XEP-0199), waits for one chat message back, and exits.

Every step prints one JSON object on stdout ({"step": ..., ...}); the Go test reads them.
The exit status is 0 when every step succeeded.
"""

import argparse
import asyncio
import json
import logging
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout


def report(step, **fields):
    fields["step"] = step
    print(json.dumps(fields), flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid + "/slixmpp", args.password, sasl_mech="SCRAM-SHA-256")
        self.args = args
        self.ok = False
        self.reply = self.loop.create_future()
        self.ca_certs = args.ca
        self.register_plugin("xep_0199")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("disconnected", self.on_disconnected)

    async def start(self, _event):
        try:
            report("bound", jid=str(self.boundjid))
            self.send_presence()
            await self.get_roster(timeout=10)
            report("roster")
            self.send_message(mto=self.args.peer, mbody="hello from slixmpp", mtype="chat")
            report("sent", to=self.args.peer)
            await self["xep_0199"].send_ping(self.args.component, timeout=10)
            report("ping", to=self.args.component)
            await self["xep_0199"].send_ping(self.boundjid.host, timeout=10)
            report("ping", to=self.boundjid.host)
            body = await asyncio.wait_for(self.reply, 10)
            report("reply", body=body)
            self.ok = True
        except (IqError, IqTimeout, asyncio.TimeoutError) as e:
            report("error", error=repr(e))
        finally:
            self.disconnect()

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and not self.reply.done():
            self.reply.set_result(str(msg["body"]))

    def on_failed_auth(self, _event):
        report("error", error="authentication failed")
        self.disconnect()

    def on_disconnected(self, _event):
        report("disconnected")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--component", required=True)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")

    c = Client(args)
    c.connect((args.host, args.port))
    try:
        c.loop.run_until_complete(asyncio.wait_for(c.disconnected, 40))
    except asyncio.TimeoutError:
        report("error", error="timed out")
    sys.exit(0 if c.ok else 1)


if __name__ == "__main__":
    main()
