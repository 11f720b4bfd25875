"""Gap: DetachVolume with only a VolumeId (Packer sends that; EC2 accepts it, stock moto answers 500).

EC2 finds the instance from the volume's attachment when InstanceId is left out.
"""
from __future__ import annotations

from moto.ec2.models.elastic_block_store import EBSBackend


def apply(knobs) -> None:
    original = EBSBackend.detach_volume

    def detach_volume(self, volume_id, instance_id, device_path):
        if not instance_id:
            volume = self.get_volume(volume_id)
            if volume.attachment is not None:
                instance_id = volume.attachment.instance.id
        return original(self, volume_id, instance_id, device_path)

    EBSBackend.detach_volume = detach_volume
