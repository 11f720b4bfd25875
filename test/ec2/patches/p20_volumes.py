"""Volumes and attachments as EC2 shows them: transitions that take time, late attachments.

moto applies every change at once; this patch keeps moto's model as the truth and gives each
volume a timeline that Describe renders at the request's moment (timing.seen_at):

  creating  for volume_creating_ms after CreateVolume, then available
  NotFound  DescribeVolumes naming the volume answers InvalidVolume.NotFound for
            not_found_after_create_ms after CreateVolume
  attach    the attachment is invisible for attach_visible_after_ms after AttachVolume, then
            `attaching` for attaching_ms, then `attached` (the volume `in-use` while visible)
  detach    the attachment is `detaching` for detaching_ms after DetachVolume, then gone

EC2's rules on the current state (never a stale one): DeleteVolume of a volume in use (detaching
included) answers VolumeInUse; AttachVolume of a volume still `creating` answers IncorrectState;
DetachVolume of an attachment EC2 does not show yet (attach_visible_after_ms) answers
IncorrectState "... is in the 'available' state" and detaches nothing: the attachment then
appears and stays until detached again.

Knobs: volume_creating_ms, not_found_after_create_ms, attach_visible_after_ms, attaching_ms,
detaching_ms (and stale_read_ms, through timing).
"""
from __future__ import annotations

from moto.ec2.exceptions import EC2ClientError, InvalidVolumeIdError, VolumeInUseError
from moto.ec2.models.elastic_block_store import EBSBackend, Volume, VolumeAttachment
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

import timing


class _Attached:
    """One attachment's timeline (monotonic seconds)."""

    def __init__(self, attachment: VolumeAttachment) -> None:
        start = timing.now()
        self.attachment = attachment
        self.visible = start + timing.duration("attach_visible_after_ms")
        self.attached = self.visible + timing.duration("attaching_ms")
        self.detach_at: float | None = None
        self.gone: float | None = None

    def state_at(self, t: float) -> str | None:
        if t < self.visible or (self.gone is not None and t >= self.gone):
            return None
        if self.detach_at is not None and t >= self.detach_at:
            return "detaching"
        return "attaching" if t < self.attached else "attached"


def _timeline(volume: Volume) -> dict:
    tl = getattr(volume, "_test_ec2", None)
    if tl is None:
        # Volumes from before the patch (or built by moto itself) are long settled.
        tl = {"born": 0.0, "ready": 0.0, "found": 0.0, "attachments": []}
        volume._test_ec2 = tl
    return tl


def _visible_attachment(volume: Volume, t: float):
    for record in reversed(_timeline(volume)["attachments"]):
        state = record.state_at(t)
        if state is not None:
            return record, state
    return None, None


def _status_at(volume: Volume, t: float) -> str:
    if t < _timeline(volume)["ready"]:
        return "creating"
    record, _ = _visible_attachment(volume, t)
    return "in-use" if record is not None else "available"


class _ShownAttachment:
    """An attachment as Describe shows it: moto's, with the state of the moment."""

    def __init__(self, attachment: VolumeAttachment, state: str) -> None:
        self._attachment = attachment
        self.status = state
        self.state = state

    def __getattr__(self, name):
        return getattr(self._attachment, name)


def apply(knobs) -> None:
    original_init = Volume.__init__
    original_attach = EBSBackend.attach_volume
    original_detach = EBSBackend.detach_volume
    original_delete = EBSBackend.delete_volume
    original_describe_request = ElasticBlockStore.describe_volumes
    original_attach_request = ElasticBlockStore.attach_volume
    original_detach_request = ElasticBlockStore.detach_volume

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        born = timing.birth()
        self._test_ec2 = {
            "born": born,
            "ready": born + timing.duration("volume_creating_ms"),
            "found": born + timing.duration("not_found_after_create_ms"),
            "attachments": [],
        }

    def status(self) -> str:
        return _status_at(self, timing.seen_at())

    def attachments(self):
        record, state = _visible_attachment(self, timing.seen_at())
        return [] if record is None else [_ShownAttachment(record.attachment, state)]

    def attach_request(self):
        # The API's rules only: moto attaches volumes of its own (RunInstances) through the backend.
        volume_id = self._get_param("VolumeId")
        volume = self.ec2_backend.get_volume(volume_id)
        if _status_at(volume, timing.now()) == "creating":
            raise EC2ClientError("IncorrectState", f"vol '{volume_id}' is not 'available'.")
        if volume.attachment is not None:
            raise VolumeInUseError(volume_id, volume.attachment.instance.id)
        return original_attach_request(self)

    def detach_request(self):
        volume_id = self._get_param("VolumeId")
        volume = self.ec2_backend.volumes.get(volume_id)
        if volume is not None and volume.attachment is not None:
            record, _ = _visible_attachment(volume, timing.now())
            if record is None:
                raise EC2ClientError("IncorrectState", f"Volume '{volume_id}' is in the 'available' state.")
        return original_detach_request(self)

    def attach_volume(self, volume_id, instance_id, device_path, delete_on_termination=False):
        volume = self.get_volume(volume_id)
        attachment = original_attach(self, volume_id, instance_id, device_path, delete_on_termination)
        if attachment is not None:
            _timeline(volume)["attachments"].append(_Attached(attachment))
        return attachment

    def detach_volume(self, volume_id, instance_id, device_path):
        volume = self.get_volume(volume_id)
        attachment = original_detach(self, volume_id, instance_id, device_path)
        for record in _timeline(volume)["attachments"]:
            if record.attachment is attachment and record.detach_at is None:
                record.detach_at = timing.now()
                record.gone = record.detach_at + timing.duration("detaching_ms")
        return attachment

    def delete_volume(self, volume_id):
        volume = self.volumes.get(volume_id)
        t = timing.now()
        # In use until the detach has finished, whether or not Describe shows the attachment yet.
        busy = [r for r in _timeline(volume)["attachments"] if r.gone is None or t < r.gone] if volume else []
        if busy:
            raise VolumeInUseError(volume_id, busy[-1].attachment.instance.id)
        return original_delete(self, volume_id)

    def describe_request(self):
        # At the API only: moto looks volumes up through the backend for its own purposes.
        volume_ids = self._get_param("VolumeIds", []) or []
        t = timing.seen_at()
        for volume_id in volume_ids:
            volume = self.ec2_backend.volumes.get(volume_id)
            if volume is not None and t < _timeline(volume)["found"]:
                raise InvalidVolumeIdError(volume_id)
        result = original_describe_request(self)
        if not volume_ids:
            # A listing leaves out what the moment does not know yet.
            volumes = result.result["Volumes"]
            volumes[:] = [v for v in volumes if t >= _timeline(v)["born"]]
        return result

    Volume.__init__ = init
    Volume.status = property(status)
    Volume.state = property(status)
    Volume.attachments = property(attachments)
    EBSBackend.attach_volume = attach_volume
    ElasticBlockStore.attach_volume = attach_request
    EBSBackend.detach_volume = detach_volume
    ElasticBlockStore.detach_volume = detach_request
    EBSBackend.delete_volume = delete_volume
    ElasticBlockStore.describe_volumes = describe_request
