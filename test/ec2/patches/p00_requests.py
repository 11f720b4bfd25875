"""Per request: the moment it sees (stale reads) and throttling bursts.

Knobs:
  seed           seeds every random draw of the test EC2 (default 0)
  time_scale     multiplies every duration knob (default 1)
  preset         "instant" (default) or "realistic": unset duration knobs take small non-zero
                 values (timing.REALISTIC)
  stale_read_ms  a Describe call may see the world as it was up to this long ago (not one with
                 the header X-Test-Ec2-Fresh: 1, which the test harness sends to count resources)
  throttle       {"actions": [names] or "*", "burst": N}: the next N matching query-API calls
                 answer RequestLimitExceeded (HTTP 503), as EC2 does when a caller exceeds its
                 request rate; N counts down as they are served
"""
from __future__ import annotations

import threading
import uuid

import timing

_throttle_lock = threading.Lock()


def _throttled(knobs, action: str) -> bool:
    if " " in action:  # not a query-API action (REST services answer their own way)
        return False
    with _throttle_lock:
        rule = knobs.get("throttle")
        if not isinstance(rule, dict) or int(rule.get("burst", 0)) <= 0:
            return False
        actions = rule.get("actions", "*")
        if actions != "*" and action not in actions:
            return False
        knobs.merge({"throttle": {**rule, "burst": int(rule["burst"]) - 1}})
        return True


def _limit_exceeded(start_response) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        "<Message>Request limit exceeded.</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()
    start_response(
        "503 Service Unavailable", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


def apply(knobs):
    timing.bind(knobs)

    def middleware(app):
        def wsgi(environ, start_response):
            action = environ.get("test_ec2.action", "")
            if _throttled(knobs, action):
                return _limit_exceeded(start_response)
            # The test harness counts what exists now (header X-Test-Ec2-Fresh: 1), never a stale view.
            timing.begin_request(action, fresh=environ.get("HTTP_X_TEST_EC2_FRESH") == "1")
            try:
                # Materialise the body while the request's moment is fixed: moto renders lazily.
                return list(app(environ, start_response))
            finally:
                timing.end_request()

        return wsgi

    return middleware
