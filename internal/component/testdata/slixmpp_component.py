"""Connect to a Confab component port as a slixmpp ComponentXMPP, over direct TLS.

Used by component_interop_test.go. Prints one line per event the Go test checks:
  SESSION              the server accepted the handshake
  MESSAGE <body>       a message arrived from the server
  STREAM-ERROR <cond>  the server sent a stream error
  DISCONNECTED
Exit status 0 unless something unexpected happened (a timeout, a failed connection).
"""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from slixmpp import ComponentXMPP


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--host", required=True, help="name in the server certificate, e.g. localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="PEM file of the CA that signed the server certificate")
    p.add_argument("--to", required=True, help="where to send the hello message")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--debug", action="store_true")
    a = p.parse_args()
    if a.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    xmpp = ComponentXMPP(a.jid, a.secret, a.host, a.port)
    xmpp.ca_certs = Path(a.ca)  # verify the server against the test CA only
    xmpp.use_ipv6 = False
    status = {"rc": 0}

    def out(*words):
        print(*words, flush=True)

    def on_session(_):
        out("SESSION")
        xmpp.send_message(mto=a.to, mfrom=a.jid, mbody="hello from slixmpp")

    def on_message(msg):
        out("MESSAGE", msg["body"])
        if msg["body"] == "bye":
            xmpp.disconnect()

    def on_stream_error(err):
        out("STREAM-ERROR", err["condition"])

    def on_failed(err):
        out("CONNECTION-FAILED", err)
        status["rc"] = 2
        xmpp.cancel_connection_attempt()
        if not done.done():
            done.set_result(True)

    done = loop.create_future()

    def on_disconnected(_):
        out("DISCONNECTED")
        if not done.done():
            done.set_result(True)

    xmpp.add_event_handler("session_start", on_session)
    xmpp.add_event_handler("message", on_message)
    xmpp.add_event_handler("stream_error", on_stream_error)
    xmpp.add_event_handler("connection_failed", on_failed)
    xmpp.add_event_handler("disconnected", on_disconnected)

    # use_ssl=True: TLS from the first byte, as Confab's component port speaks it.
    xmpp.connect(use_ssl=True)
    try:
        loop.run_until_complete(asyncio.wait_for(done, a.timeout))
    except asyncio.TimeoutError:
        out("TIMEOUT")
        return 3
    return status["rc"]


if __name__ == "__main__":
    sys.exit(main())
