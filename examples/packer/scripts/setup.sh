#!/bin/sh -e
# Runs inside the chroot: uploaded to /tmp and started by Packer's execute_command.
echo "setup from $SOURCE_AMI by $PACKER_BUILD_NAME ($PACKER_BUILDER_TYPE)" > /etc/app/setup
