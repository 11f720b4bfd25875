"""Images as EC2 makes them: RegisterImage and CopyImage keep what they are given, images take
time, copies can fail after acceptance, deregistration has EC2's options and guards.

Gaps closed (always on):
  RegisterImage keeps BlockDeviceMappings (the snapshots given, no auto-created one),
    RootDeviceName, Architecture, VirtualizationType, EnaSupport, SriovNetSupport, BootMode,
    TpmSupport, UefiData, ImdsSupport, BillingProducts and TagSpecifications (image and
    snapshot); the image's root device type is `ebs`. A name its owner already uses in the region
    answers InvalidAMIName.Duplicate; an unknown snapshot InvalidSnapshot.NotFound; a KmsKeyId
    in a mapping InvalidParameterValue (RegisterImage takes none: the snapshot's key applies).
  CopyImage copies every mapped snapshot into the destination (Encrypted/KmsKeyId applied), the
    attributes above, tags only with CopyImageTags, plus its own TagSpecifications; launch
    permissions, deprecation and deregistration protection are not copied (as on EC2).
  Billing: images carry PlatformDetails and UsageOperation. A source image takes them from its
    MOTO_AMIS_PATH entry (`platform_details`, `usage_operation`; default Linux/UNIX and
    RunInstances); RegisterImage gives Linux/UNIX and RunInstances, as EC2 does for an image
    registered from a snapshot (the source's billing code is not carried over); CopyImage keeps
    the source's.
  DeregisterImage takes DeleteAssociatedSnapshots; an image under deregistration protection (or
    in its 24 h cooldown) answers OperationNotPermitted.
  EnableImageDeprecation / DisableImageDeprecation (DeprecateAt must be in the future);
  Enable/DisableImageDeregistrationProtection (WithCooldown); DescribeImageAttribute and
  ModifyImageAttribute for bootMode, tpmSupport, uefiData, imdsSupport, sriovNetSupport,
  description.

Knobs:
  image_pending_ms   a registered image is `pending` this long, then `available`
  copy_ms            a CopyImage destination is `pending` this long (its snapshots progress over
                     the same time), then `available`, or `failed` (see kms_keys)
  kms_keys           {region: [key ids or ARNs]}: a CopyImage whose KmsKeyId is not among the
                     destination region's keys is accepted, then ends `failed` (StateReason
                     Client.InvalidKMSKey.NotFound) with its snapshots in `error`
  not_found_after_create_ms
                     DescribeImages naming a new image answers InvalidAMIID.NotFound this long
"""
from __future__ import annotations

import datetime as dt

from moto.core.responses import ActionResult
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidAMIIdError,
    InvalidParameterValueError,
    InvalidSnapshotIdError,
)
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse

import timing
from patches import p30_snapshots as snapshots

COOLDOWN = dt.timedelta(hours=24)
# DescribeImageAttribute name -> Ami attribute (moto's own names where it has them).
ATTRIBUTES = {
    "bootMode": "boot_mode",
    "tpmSupport": "tmp",
    "uefiData": "uefi",
    "imdsSupport": "imds",
    "sriovNetSupport": "sriov",
    "description": "description",
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _timeline(image: Ami) -> dict:
    tl = getattr(image, "_test_ec2", None)
    if tl is None:
        tl = {"born": 0.0, "ready": 0.0, "found": 0.0, "fails": None}
        image._test_ec2 = tl
    return tl


def _start(image: Ami, knob: str, fails: str | None = None) -> None:
    born = timing.birth()
    image._test_ec2 = {
        "born": born,
        "ready": born + timing.duration(knob),
        "found": born + timing.duration("not_found_after_create_ms"),
        "fails": fails,
    }


def _state(image: Ami) -> str:
    tl = _timeline(image)
    if image._state != "available":
        return image._state
    if timing.seen_at() < tl["ready"]:
        return "pending"
    return "failed" if tl["fails"] else "available"


def _state_reason(image: Ami):
    tl = _timeline(image)
    if tl["fails"] and _state(image) == "failed":
        return {"Code": "Client.InvalidKMSKey.NotFound", "Message": tl["fails"]}
    return None


def _protection(image: Ami) -> str:
    protection = getattr(image, "_protection", "disabled")
    until = getattr(image, "_protected_until", None)
    if protection == "disabled" and until is not None and _utcnow() < until:
        return f"disabled-until {_iso(until)}"
    return protection


def _mapping(backend, raw: dict) -> dict:
    """One block device mapping as EC2 stores it (sizes and encryption from the snapshot)."""
    mapping = {"DeviceName": raw.get("DeviceName")}
    if raw.get("VirtualName"):
        mapping["VirtualName"] = raw["VirtualName"]
    if raw.get("NoDevice") is not None:
        mapping["NoDevice"] = ""
    ebs = raw.get("Ebs")
    if ebs:
        if ebs.get("KmsKeyId"):
            raise InvalidParameterValueError(
                f"KmsKeyId ({ebs['KmsKeyId']}) in block device mapping {raw.get('DeviceName')}: "
                "RegisterImage takes no KMS key; the snapshot's encryption applies"
            )
        stored = {"DeleteOnTermination": str(ebs.get("DeleteOnTermination", True)).lower() == "true"}
        snapshot_id = ebs.get("SnapshotId")
        snapshot = None
        if snapshot_id:
            snapshot = backend.snapshots.get(snapshot_id)
            if snapshot is None:
                raise InvalidSnapshotIdError()
            stored["SnapshotId"] = snapshot_id
        size = ebs.get("VolumeSize") or (snapshot.volume_size if snapshot is not None else None)
        if size is not None:
            stored["VolumeSize"] = int(size)
        stored["VolumeType"] = ebs.get("VolumeType") or "gp2"
        for key in ("Iops", "Throughput"):
            if ebs.get(key) is not None:
                stored[key] = int(ebs[key])
        stored["Encrypted"] = bool(snapshot.encrypted) if snapshot is not None else False
        mapping["Ebs"] = stored
    return mapping


def _drop_auto_snapshot(backend, image: Ami) -> None:
    """moto makes a 15 GiB snapshot for every image; EC2 makes none when mappings are given."""
    backend.snapshots.pop(image.ebs_snapshot.id, None)


def _check_name(backend, name: str | None) -> None:
    if not name:
        return
    for image in backend.amis.values():
        if image.name == name and image.owner_id == backend.account_id:
            raise EC2ClientError(
                "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {image.id}"
            )


def _bool(value) -> bool:
    return str(value).lower() == "true"


def _tags(response, kind: str) -> dict:
    specs = response._get_param("TagSpecifications", []) or response._get_param("TagSpecification", [])
    tags: dict = {}
    for spec in specs or []:
        if spec.get("ResourceType") == kind:
            for tag in spec.get("Tags", spec.get("Tag", [])) or []:
                tags[tag["Key"]] = tag.get("Value", "")
    return tags


def _image(backend, image_id: str) -> Ami:
    image = backend.amis.get(image_id)
    if image is None:
        raise InvalidAMIIdError(image_id)
    return image


def apply(knobs) -> None:
    original_init = Ami.__init__

    def init(self, *args, **kwargs):
        self._state = "available"
        platform_details = kwargs.pop("platform_details", None)
        usage_operation = kwargs.pop("usage_operation", None)
        original_init(self, *args, **kwargs)
        windows = str(self.platform or "").lower() == "windows"
        self.platform_details = platform_details or ("Windows" if windows else "Linux/UNIX")
        self.usage_operation = usage_operation or ("RunInstances:0002" if windows else "RunInstances")
        self._mappings = None
        self.ena_support = None
        self.tmp = None
        self.uefi = None
        self.imds = None
        self.deprecation_time = None
        self.billing_products = []
        self._protection = "disabled"
        self._protected_until = None

    def set_state(self, value) -> None:
        self._state = value

    def block_device_mappings(self):
        if self._mappings is not None:
            return self._mappings
        return [
            {
                "DeviceName": self.root_device_name,
                "Ebs": {
                    "SnapshotId": self.ebs_snapshot.id,
                    "VolumeSize": 15,
                    "DeleteOnTermination": False,
                    "VolumeType": "standard",
                },
            }
        ]

    Ami.__init__ = init
    Ami.state = property(_state, set_state)
    Ami.state_reason = property(_state_reason)
    Ami.block_device_mappings = property(block_device_mappings)
    Ami.deregistration_protection = property(_protection)
    Ami.imds_support = property(lambda self: self.imds)
    Ami.tpm_support = property(lambda self: self.tmp)
    Ami.sriov_net_support = property(lambda self: self.sriov)

    def register_image(self):
        self.error_on_dryrun()
        backend = self.ec2_backend
        name = self._get_param("Name")
        _check_name(backend, name)
        mappings = [_mapping(backend, m) for m in self._get_param("BlockDeviceMappings", []) or []]
        image = backend.register_image(name, self._get_param("Description", ""))
        _start(image, "image_pending_ms")
        if mappings:
            _drop_auto_snapshot(backend, image)
            image._mappings = mappings
            image.root_device_type = "ebs"
        image.root_device_name = self._get_param("RootDeviceName") or image.root_device_name
        image.architecture = self._get_param("Architecture") or "x86_64"
        image.virtualization_type = self._get_param("VirtualizationType") or "paravirtual"
        image.hypervisor = "xen"
        if self._get_param("EnaSupport") is not None:
            image.ena_support = _bool(self._get_param("EnaSupport"))
        image.sriov = self._get_param("SriovNetSupport")
        image.boot_mode = self._get_param("BootMode")
        image.tmp = self._get_param("TpmSupport")
        image.uefi = self._get_param("UefiData")
        image.imds = self._get_param("ImdsSupport")
        image.billing_products = self._get_param("BillingProducts", []) or []
        image.add_tags(_tags(self, "image"))
        snapshot_tags = _tags(self, "snapshot")
        for mapping in mappings:
            snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
            if snapshot_id and snapshot_tags:
                backend.snapshots[snapshot_id].add_tags(snapshot_tags)
        return ActionResult({"ImageId": image.id})

    def copy_image(self):
        from moto.ec2.models import ec2_backends

        self.error_on_dryrun()
        backend = self.ec2_backend
        region = backend.region_name
        source_region = self._get_param("SourceRegion")
        source_backend = ec2_backends[backend.account_id][source_region]
        source = source_backend.describe_images(ami_ids=[self._get_param("SourceImageId")])[0]
        if source.state != "available":
            raise EC2ClientError(
                "IncorrectState", f"Image {source.id} is not in a valid state ({source.state}) to copy"
            )
        name = self._get_param("Name") or source.name
        _check_name(backend, name)
        encrypted = _bool(self._get_param("Encrypted", False))
        kms_key = self._get_param("KmsKeyId")
        fails = None
        keys = knobs.get("kms_keys")
        if kms_key and isinstance(keys, dict) and kms_key not in (keys.get(region) or []):
            fails = f"The KMS key {kms_key} does not exist in {region}"
        image = backend.copy_image(source.id, source_region, name, self._get_param("Description"))
        _start(image, "copy_ms", fails)
        mappings = []
        for raw in source.block_device_mappings:
            mapping = {k: v for k, v in raw.items() if k != "Ebs"}
            ebs = dict(raw.get("Ebs") or {})
            if ebs.get("SnapshotId"):
                copy = backend.copy_snapshot(
                    ebs["SnapshotId"], source_region, f"Copied for {image.id} from {source.id}", kms_key
                )
                copy.encrypted = bool(copy.encrypted or encrypted)
                copy.from_ami = image.id
                snapshots.start(copy, "copy_ms")
                snapshots._timeline(copy)["done"] = _timeline(image)["ready"]
                if fails:
                    snapshots.fail(copy)
                ebs["SnapshotId"] = copy.id
                ebs["Encrypted"] = copy.encrypted
            if ebs:
                mapping["Ebs"] = ebs
            mappings.append(mapping)
        _drop_auto_snapshot(backend, image)
        image._mappings = mappings
        for attribute in (
            "root_device_type",
            "root_device_name",
            "architecture",
            "virtualization_type",
            "hypervisor",
            "ena_support",
            "sriov",
            "boot_mode",
            "tmp",
            "uefi",
            "imds",
            "billing_products",
            "platform_details",
            "usage_operation",
        ):
            setattr(image, attribute, getattr(source, attribute, None))
        if _bool(self._get_param("CopyImageTags", False)):
            # moto's tag records are lower-case ({"key", "value"}).
            image.add_tags({t["key"]: t["value"] for t in source.get_tags()})
        image.add_tags(_tags(self, "image"))
        image.snapshot_copy_minutes = self._get_param("SnapshotCopyCompletionDurationMinutes")
        return ActionResult({"ImageId": image.id})

    def deregister_image(self):
        self.error_on_dryrun()
        backend = self.ec2_backend
        image_id = self._get_param("ImageId")
        image = backend.amis.get(image_id)
        if image is not None and _protection(image) != "disabled":
            raise EC2ClientError(
                "OperationNotPermitted",
                f"Image {image_id} has deregistration protection ({_protection(image)}); disable it first",
            )
        mapped = [] if image is None else [
            (m.get("Ebs") or {}).get("SnapshotId") for m in image.block_device_mappings
        ]
        backend.deregister_image(image_id)
        mapped = [s for s in mapped if s and s in backend.snapshots]
        statuses = []
        if _bool(self._get_param("DeleteAssociatedSnapshots", False)):
            for snapshot_id in mapped:
                backend.snapshots.pop(snapshot_id, None)
                statuses.append({"SnapshotId": snapshot_id, "ReturnCode": "success"})
        else:
            until = timing.now() + timing.duration("snapshot_in_use_after_deregister_ms")
            for snapshot_id in mapped:
                snapshots.released_late[snapshot_id] = (image_id, until)
        result = {"Return": True}
        if statuses:
            result["DeleteSnapshotResults"] = statuses
        return ActionResult(result)

    def describe_images(self):
        ids = self._get_param("ImageIds", []) or []
        t = timing.seen_at()
        for image_id in ids:
            image = self.ec2_backend.amis.get(image_id)
            if image is not None and t < _timeline(image)["found"]:
                raise InvalidAMIIdError(image_id)
        result = original_describe(self)
        if not ids:
            images = result.result["Images"] if hasattr(result, "result") else None
            if images is not None:
                images[:] = [i for i in images if t >= _timeline(i)["born"]]
        return result

    def enable_image_deprecation(self):
        self.error_on_dryrun()
        image = _image(self.ec2_backend, self._get_param("ImageId"))
        raw = self._get_param("DeprecateAt")
        at = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.timezone.utc)
        if at <= _utcnow():
            raise EC2ClientError("InvalidParameterValue", f"DeprecateAt {_iso(at)} is in the past")
        if at > _utcnow() + dt.timedelta(days=365 * 10):
            raise EC2ClientError("InvalidParameterValue", f"DeprecateAt {_iso(at)} is more than 10 years away")
        image.deprecation_time = _iso(at.replace(second=0, microsecond=0))
        return ActionResult({"Return": True})

    def disable_image_deprecation(self):
        self.error_on_dryrun()
        _image(self.ec2_backend, self._get_param("ImageId")).deprecation_time = None
        return ActionResult({"Return": True})

    def enable_image_deregistration_protection(self):
        self.error_on_dryrun()
        image = _image(self.ec2_backend, self._get_param("ImageId"))
        image._protection = "enabled-with-cooldown" if _bool(self._get_param("WithCooldown", False)) else "enabled"
        image._protected_until = None
        return ActionResult({"Return": "true"})

    def disable_image_deregistration_protection(self):
        self.error_on_dryrun()
        image = _image(self.ec2_backend, self._get_param("ImageId"))
        if image._protection == "enabled-with-cooldown":
            image._protected_until = _utcnow() + COOLDOWN
        image._protection = "disabled"
        return ActionResult({"Return": "true"})

    def describe_image_attribute(self):
        name = self._get_param("Attribute")
        if name not in ATTRIBUTES:
            return original_describe_attribute(self)
        image = _image(self.ec2_backend, self._get_param("ImageId"))
        value = getattr(image, ATTRIBUTES[name], None)
        result = {"ImageId": image.id}
        if value is not None:
            result[name[0].upper() + name[1:] if name != "sriovNetSupport" else "SriovNetSupport"] = {"Value": value}
        return ActionResult(result)

    def modify_image_attribute(self):
        image = _image(self.ec2_backend, self._get_param("ImageId"))
        imds = (self._get_param("ImdsSupport") or {}).get("Value")
        if imds is not None:
            self.error_on_dryrun()
            image.imds = imds
        description = (self._get_param("Description") or {}).get("Value")
        if description is not None:
            self.error_on_dryrun()
            image.description = description
        if self._get_param("LaunchPermission") or self._get_param("OperationType"):
            return original_modify_attribute(self)
        return ActionResult({})

    original_describe = AmisResponse.describe_images
    original_describe_attribute = AmisResponse.describe_image_attribute
    original_modify_attribute = AmisResponse.modify_image_attribute
    AmisResponse.register_image = register_image
    AmisResponse.copy_image = copy_image
    AmisResponse.deregister_image = deregister_image
    AmisResponse.describe_images = describe_images
    AmisResponse.enable_image_deprecation = enable_image_deprecation
    AmisResponse.disable_image_deprecation = disable_image_deprecation
    AmisResponse.enable_image_deregistration_protection = enable_image_deregistration_protection
    AmisResponse.disable_image_deregistration_protection = disable_image_deregistration_protection
    AmisResponse.describe_image_attribute = describe_image_attribute
    AmisResponse.modify_image_attribute = modify_image_attribute
