# A realistic HCL2 template, run unchanged by `ami-chroot build examples/packer/app.pkr.hcl`:
# typed variables with validation, env() in a default, a var file, locals, shell and file
# provisioners, a host-side step and Packer's manifest.
#
#   sudo ami-chroot build -var source_ami=ami-0123456789abcdef0 \
#     -var-file examples/packer/prod.pkrvars.hcl examples/packer/app.pkr.hcl
# (run from examples/packer: relative paths are relative to the working directory, as in Packer)

packer {
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "source_ami" {
  type        = string
  description = "The AMI to start from."
  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.source_ami))
    error_message = "The source_ami must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "app_version" {
  type    = string
  default = "1.0.0"
}

variable "packages" {
  type    = list(string)
  default = ["curl"]
}

variable "root_size" {
  type    = number
  default = 0
}

variable "mount_root" {
  type    = string
  default = "/mnt/ami-chroot"
}

variable "builder" {
  type    = string
  default = env("AMI_BUILDER")
}

locals {
  name = "app-${replace(var.app_version, ".", "-")}"
  tags = {
    Name    = local.name
    Version = var.app_version
    Builder = coalesce(var.builder, "unknown")
    Source  = "{{ .SourceAMIName }}"
  }
}

source "amazon-chroot" "app" {
  region          = var.region
  source_ami      = var.source_ami
  ami_name        = "${local.name}-{{timestamp}}"
  ami_description = "app ${var.app_version} built from {{ .SourceAMIName }}"
  mount_path      = "${var.mount_root}/{{ .Device }}"
  ena_support     = true
  tags            = local.tags
  snapshot_tags   = { Name = local.name }
}

build {
  name    = "app"
  sources = ["source.amazon-chroot.app"]

  provisioner "shell" {
    environment_vars = ["APP_VERSION=${var.app_version}", "QUOTED=it's \"quoted\""]
    inline = [
      "mkdir -p /etc/app /srv",
      "echo \"version=$APP_VERSION\" > /etc/app/release",
      "echo \"packages=${join(" ", var.packages)}\" >> /etc/app/release",
      "echo \"$QUOTED\" > /etc/app/quoted",
    ]
  }

  provisioner "file" {
    source      = "files/app.conf"
    destination = "/etc/app/app.conf"
  }

  # A trailing slash uploads the directory's contents; without it, the directory itself.
  provisioner "file" {
    source      = "files/site/"
    destination = "/srv/www"
  }

  provisioner "shell" {
    script           = "scripts/setup.sh"
    environment_vars = ["SOURCE_AMI=${build.SourceAMI}"]
  }

  provisioner "file" {
    direction   = "download"
    source      = "/etc/app/release"
    destination = "release.txt"
  }

  provisioner "shell-local" {
    inline = ["echo \"$PACKER_BUILD_NAME ${var.app_version}\" > built-by-shell-local.txt"]
  }

  post-processor "manifest" {
    output      = "manifest.json"
    custom_data = { version = var.app_version }
  }
}
