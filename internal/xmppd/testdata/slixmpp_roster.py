#!/usr/bin/python3
"""Roster and presence interop for the internal/xmppd tests, with slixmpp (python3-slixmpp).

Two clients, alice and bob, log in (STARTTLS, SCRAM-SHA-256). alice adds bob to her roster
with a name and a group (a roster set), and both subscribe to each other; slixmpp approves
requests and subscribes back by itself (auto_authorize, auto_subscribe), as desktop clients
offer to. Each must then see the other online, with subscription 'both', and a fresh roster
fetch must return what alice stored. Every step prints one JSON object on stdout.
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
    def __init__(self, jid, password, ca):
        super().__init__(jid + "/slixmpp", password, sasl_mech="SCRAM-SHA-256")
        self.ca_certs = ca
        self.ready = asyncio.get_event_loop().create_future()
        self.online = {}
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("got_online", self.got_online)
        self.add_event_handler("failed_all_auth", lambda _e: report("error", error="authentication failed"))

    async def start(self, _event):
        await self.get_roster(timeout=10)
        self.send_presence()
        if not self.ready.done():
            self.ready.set_result(True)

    def got_online(self, pres):
        bare = pres["from"].bare
        fut = self.online.get(bare)
        if fut is not None and not fut.done():
            fut.set_result(True)

    def wait_online(self, bare):
        if bare not in self.online:
            self.online[bare] = asyncio.get_event_loop().create_future()
        return self.online[bare]


async def run(args):
    alice_jid, bob_jid = "alice@" + args.domain, "bob@" + args.domain
    alice = Client(alice_jid, args.alice, args.ca)
    bob = Client(bob_jid, args.bob, args.ca)
    sees_bob, sees_alice = alice.wait_online(bob_jid), bob.wait_online(alice_jid)
    for c in (alice, bob):
        c.connect((args.host, args.port))
    await asyncio.wait_for(asyncio.gather(alice.ready, bob.ready), 20)
    try:
        await alice.update_roster(bob_jid, name="Bob", groups=["Friends"], timeout=10)
        report("roster-set")
        alice.send_presence_subscription(pto=bob_jid)
        await asyncio.wait_for(sees_bob, 20)
        report("alice-sees-bob")
        await asyncio.wait_for(sees_alice, 20)
        report("bob-sees-alice")
        for _ in range(100):
            a = alice.client_roster[bob_jid]["subscription"]
            b = bob.client_roster[alice_jid]["subscription"]
            if a == "both" and b == "both":
                break
            await asyncio.sleep(0.1)
        report("subscriptions", alice=a, bob=b)
        if a != "both" or b != "both":
            raise RuntimeError("subscriptions %s/%s, want both/both" % (a, b))
        iq = await alice.get_roster(timeout=10)
        items = iq["roster"]["items"]
        item = items.get(slixmpp.JID(bob_jid), {})
        report("stored", name=str(item.get("name", "")), groups=list(item.get("groups", [])))
        if item.get("name") != "Bob" or "Friends" not in item.get("groups", []):
            raise RuntimeError("alice's stored roster item: %r" % (item,))
        return 0
    except (IqError, IqTimeout, asyncio.TimeoutError, RuntimeError) as e:
        report("error", error=repr(e))
        return 1
    finally:
        alice.disconnect()
        bob.disconnect()
        await asyncio.sleep(0.2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--domain", required=True)
    p.add_argument("--alice", required=True)
    p.add_argument("--bob", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sys.exit(loop.run_until_complete(asyncio.wait_for(run(args), 50)))


if __name__ == "__main__":
    main()
