#!/usr/bin/env python3
"""The test EC2: moto's server, patched to close moto's gaps and to behave like EC2 behind knobs.

Started by fixtures/moto.ts as `python3 test/ec2/server.py --port 0`. It prints one JSON line
`{"port": N, "pid": P}` on stdout once it listens, and exits when its stdin closes (the parent
died, however it died) or on SIGTERM/SIGINT. Every module in patches/ is imported in name order
and its `apply(knobs)` called before the first request.

Control endpoints (plain HTTP, same port, never reached by the SDK):
  GET  /_ec2/knobs            the knobs in force (JSON)
  POST /_ec2/knobs            merge a JSON object into the knobs
  POST /_ec2/reset-knobs      back to the start-up knobs
  GET  /_ec2/calls            every API call served so far: [{"action", "t", "status"}]
  POST /_ec2/reset-calls      forget them
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import io
import json
import os
import pkgutil
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from knobs import Knobs, calls  # noqa: E402  (after the path insert)


def die_with_parent() -> None:
    """Exit when the parent goes: PDEATHSIG for a clean kill, stdin EOF for everything else."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def action_of(environ: dict) -> str:
    """The API action of a request: `Action=` of an EC2/STS query, else `METHOD path`."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if environ.get("REQUEST_METHOD") == "POST" and "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"


def control_app(knobs: Knobs, app):
    """Serves /_ec2/*, records every other call, and lets patches wrap the WSGI call."""

    def reply(start_response, status: str, payload) -> list[bytes]:
        body = json.dumps(payload, default=str).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path.startswith("/_ec2/"):
            if path == "/_ec2/knobs" and method == "GET":
                return reply(start_response, "200 OK", knobs.snapshot())
            if path == "/_ec2/knobs" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                knobs.merge(json.loads(environ["wsgi.input"].read(length) or b"{}"))
                return reply(start_response, "200 OK", knobs.snapshot())
            if path == "/_ec2/reset-knobs" and method == "POST":
                knobs.reset()
                return reply(start_response, "200 OK", knobs.snapshot())
            if path == "/_ec2/calls" and method == "GET":
                return reply(start_response, "200 OK", calls.list())
            if path == "/_ec2/reset-calls" and method == "POST":
                calls.clear()
                return reply(start_response, "200 OK", [])
            return reply(start_response, "404 Not Found", {"error": f"no control endpoint {method} {path}"})
        action = action_of(environ)
        # Patches that act per action (throttling, stale reads) read it from here.
        environ["test_ec2.action"] = action
        seen: dict = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        result = app(environ, recording_start_response)
        calls.add(action, seen.get("status", 0))
        return result

    return wsgi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--knobs", default=os.environ.get("TEST_EC2_KNOBS", "{}"), help="initial knobs (JSON)")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the test EC2 listens on loopback only")

    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    knobs = Knobs(json.loads(args.knobs))
    app = DomainDispatcherApplication(create_backend_app)
    patches_dir = Path(__file__).resolve().parent / "patches"
    for info in sorted(pkgutil.iter_modules([str(patches_dir)]), key=lambda m: m.name):
        module = importlib.import_module(f"patches.{info.name}")
        wrapped = module.apply(knobs)
        # A patch that returns a WSGI middleware factory wraps the app (outermost last).
        if callable(wrapped):
            app = wrapped(app)

    # moto reads MOTO_AMIS_PATH once, when this module is imported: read it now, so the caller
    # can delete the file as soon as we listen (a killed caller could not).
    import moto.ec2.models.amis  # noqa: F401

    server = make_server(args.host, args.port, control_app(knobs, app), threaded=True)
    port = server.server_address[1]
    os.environ["MOTO_PORT"] = str(port)
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
