"""Gap: the instance metadata service names an instance the test EC2 has, and serves the identity
document (Packer's amazon-chroot reads that; stock moto answers `i-fake` and has no document).

Tools that take one endpoint for every AWS request (Packer's `custom_endpoint_ec2` also moves its
IMDS client there, as does AWS_EC2_METADATA_SERVICE_ENDPOINT) reach these paths on this server:

  PUT /latest/api/token                              an IMDSv2 token
  GET /latest/meta-data/<key>                        instance-id, ami-id, instance-type, local-ipv4,
                                                     placement/availability-zone, placement/region
  GET /latest/dynamic/instance-identity/document     the identity document (JSON)

Knob:
  imds_instance_id  the instance these answers describe; it must exist (RunInstances) in any
                    region of the test EC2, else every metadata path answers 404 as a host
                    without IMDS would. Unset: stock moto's answers (`i-fake`, us-east-1a), the
                    document included.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from moto.instance_metadata.responses import INSTANCE_METADATA

_TOKEN_PATH = "/latest/api/token"
_META_PREFIX = "/latest/meta-data/"
_DOCUMENT_PATH = "/latest/dynamic/instance-identity/document"


def _find_instance(instance_id: str):
    """The moto instance with that id, in whichever region it runs (only regions in use)."""
    from moto.ec2.models import ec2_backends

    for account in ec2_backends.values():
        for backend in dict.values(account):
            for reservation in backend.all_reservations():
                for instance in reservation.instances:
                    if instance.id == instance_id:
                        return backend, instance
    return None


def _metadata(knobs) -> dict | None:
    """Key -> value for the knob's instance, stock moto's without the knob, None if it is gone."""
    instance_id = knobs.get("imds_instance_id")
    if not instance_id:
        return {
            **INSTANCE_METADATA,
            "account-id": "123456789012",
            "architecture": "x86_64",
            "pending-time": datetime.now(timezone.utc),
        }
    found = _find_instance(instance_id)
    if found is None:
        return None
    backend, instance = found
    return {
        "instance-id": instance.id,
        "ami-id": instance.image_id,
        "instance-type": instance.instance_type,
        "local-ipv4": instance.private_ip,
        "placement/availability-zone": str(instance.placement),
        "placement/region": backend.region_name,
        "account-id": backend.account_id,
        "architecture": getattr(instance, "architecture", "x86_64"),
        "pending-time": instance.launch_time,
    }


def _document(meta: dict) -> dict:
    pending = meta["pending-time"]
    if isinstance(pending, datetime):
        # moto keeps naive UTC times.
        pending = pending if pending.tzinfo else pending.replace(tzinfo=timezone.utc)
        pending = pending.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "accountId": meta["account-id"],
        "architecture": meta["architecture"],
        "availabilityZone": meta["placement/availability-zone"],
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": meta["ami-id"],
        "instanceId": meta["instance-id"],
        "instanceType": meta["instance-type"],
        "kernelId": None,
        "pendingTime": pending,
        "privateIp": meta["local-ipv4"],
        "ramdiskId": None,
        "region": meta["placement/region"],
        "version": "2017-09-30",
    }


def _answer(start_response, status: str, body: str, content_type: str = "text/plain", headers=()):
    data = body.encode()
    start_response(
        status, [("Content-Type", content_type), ("Content-Length", str(len(data))), *headers]
    )
    return [data]


_SERVED_KEYS = (
    "instance-id",
    "ami-id",
    "instance-type",
    "local-ipv4",
    "placement/availability-zone",
    "placement/region",
)


def apply(knobs):
    def middleware(app):
        def wsgi(environ, start_response):
            path = environ.get("PATH_INFO", "")
            method = environ.get("REQUEST_METHOD")
            if path == _TOKEN_PATH and method == "PUT":
                ttl = environ.get("HTTP_X_AWS_EC2_METADATA_TOKEN_TTL_SECONDS", "21600")
                # aws-sdk-go v1 rejects a token whose answer lacks the TTL header, and retries.
                ttl_header = ("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)
                return _answer(start_response, "200 OK", f"test-ec2-imds-token-{ttl}", headers=[ttl_header])
            is_meta = path.startswith(_META_PREFIX) and path[len(_META_PREFIX) :] in _SERVED_KEYS
            if method != "GET" or not (is_meta or path == _DOCUMENT_PATH):
                return app(environ, start_response)
            meta = _metadata(knobs)
            if meta is None:
                return _answer(start_response, "404 Not Found", "Not Found")
            if path == _DOCUMENT_PATH:
                return _answer(start_response, "200 OK", json.dumps(_document(meta), indent=2), "application/json")
            return _answer(start_response, "200 OK", str(meta[path[len(_META_PREFIX) :]]))

        return wsgi

    return middleware
