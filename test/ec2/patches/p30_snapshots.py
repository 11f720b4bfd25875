"""Snapshots as EC2 shows them: pending with rising progress, late visibility, InUse after
DeregisterImage, and the structured CreateVolumePermission form.

  snapshot_ms        a new snapshot (CreateSnapshot, CopySnapshot, or an image's copy) is
                     `pending` this long, its Progress rising linearly, then `completed` 100%
  not_found_after_create_ms
                     DescribeSnapshots naming it answers InvalidSnapshot.NotFound this long
  snapshot_in_use_after_deregister_ms
                     DeleteSnapshot of a snapshot of an image answers InvalidSnapshot.InUse this
                     long after the image's DeregisterImage (EC2 releases it late)

Always (gaps closed): DeleteSnapshot of a snapshot an existing image maps answers
InvalidSnapshot.InUse; ModifySnapshotAttribute takes the structured
`CreateVolumePermission={Add|Remove: [{UserId}|{Group}]}` form as the SDK sends it, not only the
flat `OperationType` + `UserIds`/`GroupNames` form.
"""
from __future__ import annotations

from moto.ec2.exceptions import InvalidSnapshotIdError, InvalidSnapshotInUse
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.core.responses import EmptyResult

import timing

# snapshot id -> (image id, monotonic time until which DeleteSnapshot answers InUse)
released_late: dict[str, tuple[str, float]] = {}


def start(snapshot: Snapshot, knob: str = "snapshot_ms") -> None:
    """(Re)starts a snapshot's pending phase: `knob` names the duration (CopyImage uses copy_ms)."""
    born = timing.birth()
    snapshot._test_ec2 = {
        "born": born,
        "done": born + timing.duration(knob),
        "found": born + timing.duration("not_found_after_create_ms"),
        "state": None,
    }


def _timeline(snapshot: Snapshot) -> dict:
    tl = getattr(snapshot, "_test_ec2", None)
    if tl is None:
        tl = {"born": 0.0, "done": 0.0, "found": 0.0, "state": None}
        snapshot._test_ec2 = tl
    return tl


def fail(snapshot: Snapshot) -> None:
    """The snapshot ends in `error` (a copy that failed)."""
    _timeline(snapshot)["state"] = "error"


def _state_at(snapshot: Snapshot, t: float) -> tuple[str, int]:
    tl = _timeline(snapshot)
    if t >= tl["done"]:
        return (tl["state"] or "completed"), 100
    span = tl["done"] - tl["born"]
    return "pending", max(0, min(99, int(100 * (t - tl["born"]) / span))) if span > 0 else 0


def in_use_by(backend, snapshot_id: str) -> str | None:
    """The image (of this region) whose block device mappings name the snapshot, if any."""
    for image in list(backend.amis.values()):
        for mapping in getattr(image, "block_device_mappings", []) or []:
            if (mapping.get("Ebs") or {}).get("SnapshotId") == snapshot_id:
                return image.id
    return None


def apply(knobs) -> None:
    original_init = Snapshot.__init__
    original_delete = EBSBackend.delete_snapshot
    original_describe_request = ElasticBlockStore.describe_snapshots

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        start(self)

    def status(self) -> str:
        return _state_at(self, timing.seen_at())[0]

    def set_status(self, value) -> None:
        # moto assigns `completed` in __init__; the timeline decides.
        pass

    def progress(self) -> str:
        return f"{_state_at(self, timing.seen_at())[1]}%"

    def delete_snapshot(self, snapshot_id):
        user = in_use_by(self, snapshot_id)
        if user is not None:
            raise InvalidSnapshotInUse(snapshot_id, user)
        late = released_late.get(snapshot_id)
        if late is not None and timing.now() < late[1]:
            raise InvalidSnapshotInUse(snapshot_id, late[0])
        released_late.pop(snapshot_id, None)
        return original_delete(self, snapshot_id)

    def describe_request(self):
        # At the API only: moto looks snapshots up through the backend for its own purposes.
        snapshot_ids = self._get_param("SnapshotIds", []) or []
        t = timing.seen_at()
        for snapshot_id in snapshot_ids:
            snapshot = self.ec2_backend.snapshots.get(snapshot_id)
            if snapshot is not None and t < _timeline(snapshot)["found"]:
                raise InvalidSnapshotIdError()
        result = original_describe_request(self)
        if not snapshot_ids:
            found = result.result["Snapshots"]
            found[:] = [s for s in found if t >= _timeline(s)["born"]]
        return result

    def modify_snapshot_attribute(self):
        snapshot_id = self._get_param("SnapshotId")
        self.error_on_dryrun()
        structured = self._get_param("CreateVolumePermission", {}) or {}
        changes = {
            "add": list(structured.get("Add", []) or []),
            "remove": list(structured.get("Remove", []) or []),
        }
        operation = self._get_param("OperationType")
        if operation in changes:
            changes[operation] += [{"UserId": u} for u in self._get_param("UserIds", [])]
            changes[operation] += [{"Group": g} for g in self._get_param("GroupNames", [])]
        for operation, method in (
            ("add", self.ec2_backend.add_create_volume_permission),
            ("remove", self.ec2_backend.remove_create_volume_permission),
        ):
            items = changes[operation]
            users = [i["UserId"] for i in items if i.get("UserId")]
            groups = [i["Group"] for i in items if i.get("Group")]
            if users or groups:
                method(snapshot_id, user_ids=users, groups=groups)
        return EmptyResult()

    Snapshot.__init__ = init
    Snapshot.status = property(status, set_status)
    Snapshot.state = property(status)
    Snapshot.progress = property(progress)
    EBSBackend.delete_snapshot = delete_snapshot
    ElasticBlockStore.describe_snapshots = describe_request
    ElasticBlockStore.modify_snapshot_attribute = modify_snapshot_attribute
