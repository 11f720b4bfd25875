"""EBS direct APIs as EC2 serves them (stock moto: 512-byte blocks, no lineage, no checks).

What this module makes true (AWS documentation: EBS direct APIs reference and user guide):
- Blocks are 524288 bytes (`BlockSize`); `PutSnapshotBlock` accepts only `DataLength` 524288, an
  index inside `VolumeSize`, and a Base64 SHA-256 `Checksum` that matches the data
  (`ValidationException` otherwise).
- `StartSnapshot` with `ParentSnapshotId` starts from the parent's blocks: `ListSnapshotBlocks` of
  the child lists inherited blocks (same block tokens), `ListChangedBlocks(parent, child)` lists
  only what the child wrote; between snapshots of different lineages it is a `ValidationException`
  (`UNRELATED_SNAPSHOTS`). `VolumeSize` may not shrink below the parent's.
- Encryption: `Encrypted` and `ParentSnapshotId` together are a `ValidationException`; a child of
  an encrypted parent is encrypted (with `KmsKeyArn` or the parent's key); `KmsKeyArn` without a
  parent needs `Encrypted`.
- The EC2 snapshot exists from `StartSnapshot` on, `pending` until `CompleteSnapshot`, then
  `completed` (after `ebs_complete_ms`). Only completed snapshots can be read. `CompleteSnapshot`
  with a `ChangedBlocksCount` other than the blocks written, or with an aggregated `Checksum`
  (`ChecksumAlgorithm` SHA256, `ChecksumAggregationMethod` LINEAR: SHA-256 of the written blocks'
  SHA-256 digests, concatenated in block index order) that does not match them, puts the
  snapshot in `error`.
- A snapshot deleted through EC2 is gone for the EBS direct APIs too.
- Pagination: `MaxResults` (at least 100), `NextToken`, `StartingBlockIndex`; indexes ascending.
- No volume is left behind (stock moto creates one per StartSnapshot).

Knobs:
- `ebs_throttle`: `{"actions": ["PutSnapshotBlock", ...] or "*", "burst": N}`: the next N matching
  EBS direct calls answer `RequestThrottledException` (HTTP 400, as EBS does).
- `ebs_fail_blocks`: N: the next N `PutSnapshotBlock` calls answer `InternalServerException` (500).
- `ebs_fail_reads`: N: the next N `GetSnapshotBlock` calls answer `InternalServerException` (500).
- `ebs_corrupt_reads`: N: the next N `GetSnapshotBlock` answers carry one flipped byte (the
  checksum header stays the true one), as a damaged transfer would.
- `ebs_complete_ms`: how long a completed snapshot stays `pending` after `CompleteSnapshot`.

Block data lives in one unlinked temporary file (content-addressed: a block written twice is
stored once), so a large image costs disk, not memory, and nothing survives the server.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

from moto.ebs.responses import EBSResponse
from moto.ec2.models import ec2_backends

BLOCK_SIZE = 524288
GIB = 1 << 30
_lock = threading.RLock()


class _BlockFile:
    """Append-only, content-addressed block storage in an unlinked temp file."""

    def __init__(self) -> None:
        fd, path = tempfile.mkstemp(prefix="test-ec2-ebs-")
        os.unlink(path)
        self._fd = fd
        self._size = 0
        self._by_hash: dict[str, int] = {}

    def put(self, sha: str, data: bytes) -> int:
        with _lock:
            offset = self._by_hash.get(sha)
            if offset is None:
                offset = self._size
                os.pwrite(self._fd, data, offset)
                self._size += len(data)
                self._by_hash[sha] = offset
            return offset

    def get(self, offset: int) -> bytes:
        return os.pread(self._fd, BLOCK_SIZE, offset)


@dataclass
class _Block:
    token: str
    sha: str
    offset: int


@dataclass
class _Snap:
    volume_size: int
    status: str = "pending"
    parent: str | None = None
    encrypted: bool = False
    kms_key_arn: str | None = None
    blocks: dict[int, _Block] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)
    start_time: float = field(default_factory=time.time)


_store: dict[tuple[str, str, str], _Snap] = {}
_blocks: _BlockFile | None = None


class _Fail(Exception):
    def __init__(self, status: int, kind: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.reason = status, kind, reason


def _error(e: _Fail):
    body = {"message": e.args[0], "Message": e.args[0]}
    if e.reason:
        body["Reason"] = e.reason
    return e.status, {"x-amzn-ErrorType": e.kind, "content-type": "application/json", "status": e.status}, json.dumps(body)


def _validation(message: str, reason: str = "INVALID_PARAMETER_VALUE") -> _Fail:
    return _Fail(400, "ValidationException", message, reason)


def _not_found(snapshot_id: str) -> _Fail:
    return _Fail(404, "ResourceNotFoundException", f"The snapshot '{snapshot_id}' does not exist.", "SNAPSHOT_NOT_FOUND")


def _ec2(resp):
    return ec2_backends[resp.current_account][resp.region]


def _snap(resp, snapshot_id: str, *, readable: bool = False) -> _Snap:
    """The snapshot as EBS sees it; EC2 snapshots not made here are completed and empty."""
    ec2_snap = _ec2(resp).snapshots.get(snapshot_id)
    key = (resp.current_account, resp.region, snapshot_id)
    with _lock:
        if ec2_snap is None:
            _store.pop(key, None)
            raise _not_found(snapshot_id)
        snap = _store.get(key)
        if snap is None:
            snap = _Snap(volume_size=int(ec2_snap.volume.size), status="completed",
                         encrypted=bool(ec2_snap.encrypted), kms_key_arn=ec2_snap.kms_key_id)
            _store[key] = snap
    if readable and snap.status != "completed":
        raise _validation(f"The snapshot {snapshot_id} is {snap.status}: only completed snapshots can be read.",
                          "INVALID_SNAPSHOT_ID")
    return snap


def _lineage(resp, snapshot_id: str) -> set[str]:
    seen: set[str] = set()
    current: str | None = snapshot_id
    while current and current not in seen:
        seen.add(current)
        snap = _store.get((resp.current_account, resp.region, current))
        current = snap.parent if snap else None
    return seen


def _related(resp, a: str, b: str) -> bool:
    """Same lineage: one descends from the other, or both from a common ancestor."""
    return bool(_lineage(resp, a) & _lineage(resp, b))


def _linear(snap: _Snap) -> str:
    """The LINEAR aggregate: SHA-256 of the written blocks' SHA-256 digests in block index order."""
    digest = hashlib.sha256()
    for index in sorted(snap.written):
        digest.update(base64.b64decode(snap.blocks[index].sha))
    return base64.b64encode(digest.digest()).decode()


def _throttled(knobs, action: str) -> None:
    with _lock:
        spec = knobs.get("ebs_throttle")
        if not spec or int(spec.get("burst", 0)) <= 0:
            return
        actions = spec.get("actions", "*")
        if actions != "*" and action not in actions:
            return
        knobs.merge({"ebs_throttle": {**spec, "burst": int(spec["burst"]) - 1}})
    raise _Fail(400, "RequestThrottledException", "The request rate is too high for this snapshot.", "ACCOUNT_THROTTLED")


def _page(items: list, query: dict) -> tuple[list, str | None]:
    start = int(query.get("pageToken", query.get("startingBlockIndex", ["0"]))[0])
    limit = max(100, int(query.get("maxResults", ["10000"])[0]))
    picked = [i for i in items if i >= start][: limit + 1]
    if len(picked) > limit:
        return picked[:limit], str(picked[limit])
    return picked, None


def apply(knobs) -> None:
    global _blocks
    _blocks = _BlockFile()

    def handler(action: str):
        def wrap(fn):
            def method(self):
                try:
                    _throttled(knobs, action)
                    return fn(self)
                except _Fail as e:
                    return _error(e)
            return method
        return wrap

    @handler("StartSnapshot")
    def start_snapshot(self):
        params = json.loads(self.body or b"{}")
        size = params.get("VolumeSize")
        if not isinstance(size, int) or size < 1:
            raise _validation("VolumeSize must be a whole number of GiB >= 1.", "INVALID_VOLUME_SIZE")
        parent_id = params.get("ParentSnapshotId")
        encrypted = params.get("Encrypted")
        kms = params.get("KmsKeyArn")
        parent = None
        if parent_id:
            if encrypted is not None:
                raise _validation("You can't specify ParentSnapshotId and Encrypted in the same request.")
            parent = _snap(self, parent_id, readable=True)
            if size < parent.volume_size:
                raise _validation(f"VolumeSize {size} is smaller than the parent's {parent.volume_size} GiB.", "INVALID_VOLUME_SIZE")
            if kms and not parent.encrypted:
                raise _validation("KmsKeyArn needs an encrypted parent snapshot or Encrypted=true.")
            encrypted = parent.encrypted
            kms = kms or parent.kms_key_arn
        elif kms and not encrypted:
            raise _validation("KmsKeyArn needs Encrypted=true.")
        if encrypted and not kms:
            kms = f"arn:aws:kms:{self.region}:{self.current_account}:alias/aws/ebs"
        ec2 = _ec2(self)
        volume = ec2.create_volume(size=size, zone_name=f"{self.region}a")
        ec2_snap = ec2.create_snapshot(volume_id=volume.id, description=params.get("Description") or "")
        # The snapshot keeps the volume object for its size; the volume itself must not linger.
        ec2.volumes.pop(volume.id, None)
        ec2_snap.status = "pending"
        ec2_snap.encrypted = bool(encrypted)
        ec2_snap.kms_key_id = kms
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        if tags:
            ec2.create_tags([ec2_snap.id], tags)
        snap = _Snap(volume_size=size, parent=parent_id, encrypted=bool(encrypted), kms_key_arn=kms,
                     blocks=dict(parent.blocks) if parent else {})
        with _lock:
            _store[(self.current_account, self.region, ec2_snap.id)] = snap
        out = {
            "SnapshotId": ec2_snap.id, "OwnerId": self.current_account, "Status": "pending",
            "StartTime": snap.start_time, "VolumeSize": size, "BlockSize": BLOCK_SIZE,
            "Tags": params.get("Tags") or [], "Description": params.get("Description") or "",
            "ParentSnapshotId": parent_id, "KmsKeyArn": kms, "SseType": "sse-ebs" if encrypted else "none",
        }
        return 201, {"status": 201, "content-type": "application/json"}, json.dumps({k: v for k, v in out.items() if v is not None})

    @handler("PutSnapshotBlock")
    def put_snapshot_block(self):
        parts = self.parsed_url.path.split("/")
        snapshot_id, index = parts[-3], int(parts[-1])
        snap = _snap(self, snapshot_id)
        if snap.status != "pending":
            raise _validation(f"The snapshot {snapshot_id} is {snap.status}; blocks can only be written while pending.",
                              "INVALID_SNAPSHOT_ID")
        with _lock:
            fails = int(knobs.get("ebs_fail_blocks", 0) or 0)
            if fails > 0:
                knobs.merge({"ebs_fail_blocks": fails - 1})
        if fails > 0:
            raise _Fail(500, "InternalServerException", "An internal error occurred (ebs_fail_blocks).")
        headers = {k.lower(): v for k, v in self.headers.items()}
        data = self.body if isinstance(self.body, bytes) else (self.body or "").encode("latin-1")
        if int(headers.get("x-amz-data-length", -1)) != BLOCK_SIZE or len(data) != BLOCK_SIZE:
            raise _validation(f"DataLength must be {BLOCK_SIZE} (got {headers.get('x-amz-data-length')}, {len(data)} bytes sent).",
                              "INVALID_PARAMETER_VALUE")
        if index < 0 or index * BLOCK_SIZE >= snap.volume_size * GIB:
            raise _validation(f"BlockIndex {index} is outside the {snap.volume_size} GiB volume.", "INVALID_BLOCK")
        if headers.get("x-amz-checksum-algorithm") != "SHA256":
            raise _validation("ChecksumAlgorithm must be SHA256.", "INVALID_PARAMETER_VALUE")
        sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
        if headers.get("x-amz-checksum") != sha:
            raise _validation("The checksum does not match the block data.", "INVALID_PARAMETER_VALUE")
        offset = _blocks.put(sha, data)
        with _lock:
            snap.blocks[index] = _Block(token=str(uuid.uuid4()), sha=sha, offset=offset)
            snap.written.add(index)
        return 201, {"status": 201, "x-amz-Checksum": sha, "x-amz-Checksum-Algorithm": "SHA256"}, "{}"

    @handler("CompleteSnapshot")
    def complete_snapshot(self):
        snapshot_id = self.parsed_url.path.split("/")[-1]
        snap = _snap(self, snapshot_id)
        headers = {k.lower(): v for k, v in self.headers.items()}
        count = headers.get("x-amz-changedblockscount")
        if count is None:
            raise _validation("ChangedBlocksCount is required.")
        if snap.status != "pending":
            return 202, {"status": 202, "content-type": "application/json"}, json.dumps({"Status": snap.status})
        checksum = headers.get("x-amz-checksum")
        if checksum is not None and (headers.get("x-amz-checksum-algorithm") != "SHA256"
                                     or headers.get("x-amz-checksum-aggregation-method") != "LINEAR"):
            raise _validation("An aggregated Checksum needs ChecksumAlgorithm SHA256 and ChecksumAggregationMethod LINEAR.")
        ec2_snap = _ec2(self).snapshots.get(snapshot_id)
        if int(count) != len(snap.written) or (checksum is not None and checksum != _linear(snap)):
            snap.status = "error"
            if ec2_snap is not None:
                ec2_snap.status = "error"
            return 202, {"status": 202, "content-type": "application/json"}, json.dumps({"Status": "error"})

        def complete() -> None:
            snap.status = "completed"
            if ec2_snap is not None:
                ec2_snap.status = "completed"

        delay = float(knobs.get("ebs_complete_ms", 0) or 0) * float(knobs.get("time_scale", 1) or 1)
        if delay > 0:
            timer = threading.Timer(delay / 1000, complete)
            timer.daemon = True
            timer.start()
            return 202, {"status": 202, "content-type": "application/json"}, json.dumps({"Status": "pending"})
        complete()
        return 202, {"status": 202, "content-type": "application/json"}, json.dumps({"Status": "completed"})

    @handler("ListSnapshotBlocks")
    def list_snapshot_blocks(self):
        snapshot_id = self.parsed_url.path.split("/")[-2]
        snap = _snap(self, snapshot_id, readable=True)
        indexes, next_token = _page(sorted(snap.blocks), self.querystring)
        out = {
            "Blocks": [{"BlockIndex": i, "BlockToken": snap.blocks[i].token} for i in indexes],
            "VolumeSize": snap.volume_size, "BlockSize": BLOCK_SIZE,
            "ExpiryTime": time.time() + 7 * 86400,
        }
        if next_token:
            out["NextToken"] = next_token
        return 200, {"status": 200, "content-type": "application/json"}, json.dumps(out)

    @handler("ListChangedBlocks")
    def list_changed_blocks(self):
        second_id = self.parsed_url.path.split("/")[-2]
        second = _snap(self, second_id, readable=True)
        first_id = self.querystring.get("firstSnapshotId", [None])[0]
        first = _snap(self, first_id, readable=True) if first_id else None
        if first is not None and not _related(self, first_id, second_id):
            raise _validation(f"{first_id} and {second_id} are not of the same lineage.", "UNRELATED_SNAPSHOTS")
        a = first.blocks if first else {}
        b = second.blocks
        changed = sorted(i for i in set(a) | set(b) if (a.get(i) and a[i].token) != (b.get(i) and b[i].token))
        indexes, next_token = _page(changed, self.querystring)
        blocks = []
        for i in indexes:
            entry = {"BlockIndex": i}
            if i in a:
                entry["FirstBlockToken"] = a[i].token
            if i in b:
                entry["SecondBlockToken"] = b[i].token
            blocks.append(entry)
        out = {"ChangedBlocks": blocks, "VolumeSize": second.volume_size, "BlockSize": BLOCK_SIZE,
               "ExpiryTime": time.time() + 7 * 86400}
        if next_token:
            out["NextToken"] = next_token
        return 200, {"status": 200, "content-type": "application/json"}, json.dumps(out)

    @handler("GetSnapshotBlock")
    def get_snapshot_block(self):
        parts = self.parsed_url.path.split("/")
        snapshot_id, index = parts[-3], int(parts[-1])
        snap = _snap(self, snapshot_id, readable=True)
        token = self.querystring.get("blockToken", [None])[0]
        block = snap.blocks.get(index)
        if block is None or block.token != token:
            raise _validation(f"The block token is not valid for block {index} of {snapshot_id}.", "INVALID_BLOCK_TOKEN")
        with _lock:
            fails = int(knobs.get("ebs_fail_reads", 0) or 0)
            if fails > 0:
                knobs.merge({"ebs_fail_reads": fails - 1})
        if fails > 0:
            raise _Fail(500, "InternalServerException", "An internal error occurred (ebs_fail_reads).")
        data = _blocks.get(block.offset)
        with _lock:
            corrupt = int(knobs.get("ebs_corrupt_reads", 0) or 0)
            if corrupt > 0:
                knobs.merge({"ebs_corrupt_reads": corrupt - 1})
        if corrupt > 0:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        headers = {"status": 200, "x-amz-Checksum": block.sha, "x-amz-Checksum-Algorithm": "SHA256",
                   "x-amz-Data-Length": str(BLOCK_SIZE), "content-type": "application/octet-stream"}
        return 200, headers, data

    EBSResponse.start_snapshot = start_snapshot
    EBSResponse.put_snapshot_block = put_snapshot_block
    EBSResponse.complete_snapshot = complete_snapshot
    EBSResponse.list_snapshot_blocks = list_snapshot_blocks
    EBSResponse.list_changed_blocks = list_changed_blocks
    EBSResponse.get_snapshot_block = get_snapshot_block
