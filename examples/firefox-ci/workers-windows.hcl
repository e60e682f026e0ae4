# Windows (generic-worker) pools, one entry of `local.windows_pools` each,
# keyed by id. A Windows instance runs one task. Pools with disks have a
# larger root (`root` GiB) and two 120 GiB data volumes, alike on every
# instance type, so on the worker type.

locals {
  windows_pool = { min = 0, root = 0, regions = local.regions, imds_v1 = false }

  # Builders of levels 1 and 2 also ran in Frankfurt; level 3 in the US only.
  win_builder = {
    ami     = ami_set.win2012-builder
    network = network.windows
    types   = ["c4.4xlarge", "c5.4xlarge"]
    root    = 40
  }
  win_builder_trusted = merge(local.win_builder, {
    ami     = ami_set.win2012-builder-trusted
    network = network.trusted
    regions = local.us_regions
  })

  # The test workers' images are the oldest in the fleet: they keep instance
  # metadata v1 allowed (fleetform's default is v2 only).
  win7 = { ami = ami_set.win7-tester, network = network.windows, root = 30, imds_v1 = true }

  # NSS kept the image's root and ran in the two us-west regions only.
  nss_windows = { ami = ami_set.nss-win2012, types = ["m5d.2xlarge"], max = 150, regions = ["us-west-1", "us-west-2"] }

  windows_pools = {
    "gecko-1-b-win2012" = merge(local.win_builder, { max = 512 })
    "gecko-2-b-win2012" = merge(local.win_builder, { max = 512 })
    "gecko-3-b-win2012" = merge(local.win_builder_trusted, { max = 600 })
    "comm-1-b-win2012"  = merge(local.win_builder, { max = 512 })
    "comm-3-b-win2012"  = merge(local.win_builder_trusted, { max = 600 })

    "gecko-t-t-win7-32" = merge(local.win7, { types = ["c4.2xlarge"], max = 256 })
    "gecko-t-t-win7-32-gpu" = merge(local.win7, {
      ami     = ami_set.win7-tester-gpu
      types   = ["g2.2xlarge", "g3.4xlarge"]
      max     = 128
      regions = local.us_regions
    })

    "nss-1-win2012r2"  = merge(local.nss_windows, { network = network.windows })
    "nss-3-win2012r2"  = merge(local.nss_windows, { network = network.trusted })
    "relops-3-win2019" = { ami = ami_set.win2019-image-builder, network = network.trusted, types = ["c5.4xlarge"], root = 40, max = 12 }
  }

  windows = { for id, pool in local.windows_pools : id => merge(local.windows_pool, pool) }
}

worker_type "windows" {
  for_each = local.windows
  name     = each.key # the pool's id, not "windows-<id>"
  ami_set  = each.value.ami
  key_pair = key_pair.workers
  regions  = each.value.regions
  network  = each.value.network

  dynamic "root_volume" {
    for_each = each.value.root > 0 ? [each.value.root] : []
    content {
      size_gb = root_volume.value
      type    = "gp2"
    }
  }
  dynamic "volume" {
    for_each = each.value.root > 0 ? ["/dev/sdb", "/dev/sdc"] : []
    labels   = [volume.value]
    content {
      size_gb = 120
      type    = "gp2"
    }
  }

  dynamic "instance_type" {
    for_each = each.value.types
    labels   = [instance_type.value]
    content {
      capacity = 1
    }
  }

  capacity {
    min = each.value.min
    max = each.value.max
  }

  market       = "spot"
  max_lifetime = "96h"
  tags         = local.tags
  user_data = templatefile("userdata/generic-worker.ps1", {
    worker_type = each.key
    root_url    = var.root_url
  })

  # Only for the Windows 7 images (`imds_v1`); the rest keep IMDSv2 only.
  dynamic "metadata" {
    for_each = each.value.imds_v1 ? ["v1"] : []
    content {
      http_tokens = "optional"
      hop_limit   = 1
    }
  }
}
