# Linux (docker-worker) pools. Each pool is an entry of `local.linux_untrusted`
# or `local.linux_trusted`, keyed by its id (its Taskcluster id with `/`
# written as `-`); `worker_type "linux"` below makes each a worker type.

locals {
  # What a trust level decides: level 3 builds releases, from its own image,
  # behind the trusted security groups. Levels 1 and 2 share the rest.
  untrusted = { ami = ami_set.docker-worker, network = network.untrusted }
  trusted   = { ami = ami_set.docker-worker-trusted, network = network.trusted }

  # What a pool does not say: one task per instance (`capacity`), none kept
  # running, no second volume.
  linux_pool = { capacity = 1, min = 0, xvdb = 0, nvme = [] }

  # Kinds of pool. `types` are in the pools' order of preference. Each gets a
  # second gp2 volume, /dev/xvdb, of `xvdb` GiB, except those under `nvme`,
  # which build on their local NVMe disk instead.
  b_linux = {
    types = ["c5.4xlarge", "c5d.4xlarge", "m5.4xlarge", "c5n.4xlarge", "m5d.4xlarge", "m5n.4xlarge", "m5dn.4xlarge"]
    xvdb  = 120
    nvme  = ["c5d.4xlarge"]
  }
  b_linux_large = {
    types = ["c5d.9xlarge", "m5d.12xlarge", "m5.12xlarge", "m4.10xlarge", "c5.9xlarge", "c4.8xlarge"]
    xvdb  = 120
    nvme  = ["c5d.9xlarge", "m5d.12xlarge"]
  }
  b_linux_xlarge = {
    types = ["c5d.18xlarge", "m5d.24xlarge", "m5.24xlarge", "m4.16xlarge", "c5.18xlarge"]
    xvdb  = 120
    nvme  = ["c5d.18xlarge", "m5d.24xlarge"]
  }
  images = {
    types = ["c5d.xlarge", "m5d.xlarge", "c5.xlarge"]
    xvdb  = 120
    nvme  = ["c5d.xlarge", "m5d.xlarge"]
  }
  decision       = { types = ["c5d.xlarge", "m5d.xlarge"], capacity = 2, min = 5 }
  t_linux_large  = { types = ["m5.large"], xvdb = 32 }
  t_linux_xlarge = { types = ["m5.xlarge", "m5a.xlarge", "m5d.xlarge", "c5.xlarge"], xvdb = 120 }
  review_bot     = { types = ["m5.large", "m5a.large", "m5d.large", "m4.large"], xvdb = 10, min = 1 }
  coverage_bot = {
    types = [
      "r5.large",
      "r5d.large",
      "r5a.large",
      "r5ad.large",
      "z1d.large",
      "m5.xlarge",
      "m5a.xlarge",
      "m5d.xlarge",
      "m4.xlarge",
      "c5.2xlarge",
      "c5d.2xlarge",
    ]
    xvdb = 100
    min  = 1
  }

  linux_untrusted = {
    "gecko-1-b-linux"        = merge(local.b_linux, { max = 1000 })
    "gecko-1-b-linux-large"  = merge(local.b_linux_large, { max = 10 })
    "gecko-1-b-linux-xlarge" = merge(local.b_linux_xlarge, { max = 10 })
    "gecko-1-b-linux-aws"    = { types = ["c5d.4xlarge"], xvdb = 120, max = 50 }
    "gecko-1-decision"       = merge(local.decision, { max = 40 })
    "gecko-1-images"         = merge(local.images, { max = 30 })
    "gecko-2-b-linux"        = merge(local.b_linux, { max = 1000 })
    "gecko-2-b-linux-large"  = merge(local.b_linux_large, { max = 10 })
    "comm-1-b-linux"         = merge(local.b_linux, { max = 200 })
    "comm-1-b-linux-large"   = merge(local.b_linux_large, { max = 10 })

    # Tests run untrusted code at every level.
    "gecko-t-t-linux-large"         = merge(local.t_linux_large, { max = 2500 })
    "gecko-t-t-linux-xlarge"        = merge(local.t_linux_xlarge, { max = 1500 })
    "gecko-t-t-linux-xlarge-source" = merge(local.t_linux_xlarge, { max = 200 })
    "gecko-t-misc"                  = { types = ["r5d.xlarge", "m5d.xlarge", "c5d.xlarge"], capacity = 8, max = 32 }
    "comm-t-t-linux-large"          = merge(local.t_linux_large, { max = 100 })
    "comm-t-t-linux-xlarge"         = merge(local.t_linux_xlarge, { max = 10 })

    "mobile-1-b-linux-large" = { types = ["c5d.2xlarge"], xvdb = 120, max = 50 }
    "mobile-1-decision"      = { types = ["m5d.large"], capacity = 2, min = 2, max = 10 }
    "glean-1-b-linux"        = { types = ["c5d.large"], xvdb = 120, min = 2, max = 100 }
    "nss-1-linux"            = { types = ["m5d.xlarge"], max = 150 }
    "app-services-1-b-linux" = { types = ["c5d.4xlarge"], xvdb = 120, max = 50 }

    # The code review and coverage bots, and a small service worker.
    "code-review-bot"           = merge(local.review_bot, { max = 100 })
    "code-coverage-bot"         = merge(local.coverage_bot, { max = 100 })
    "project-relman-relman-svc" = { types = ["m5.large"], xvdb = 100, max = 2 }
  }

  linux_trusted = {
    "gecko-3-b-linux"        = merge(local.b_linux, { max = 1000 })
    "gecko-3-b-linux-large"  = merge(local.b_linux_large, { max = 10 })
    "gecko-3-b-linux-xlarge" = merge(local.b_linux_xlarge, { max = 10 })
    "gecko-3-b-linux-aws"    = { types = ["c5.4xlarge", "c5d.4xlarge", "m5.4xlarge"], xvdb = 120, max = 50 }
    "gecko-3-decision"       = merge(local.decision, { max = 20 })
    "gecko-3-images"         = merge(local.images, { max = 30 })
    "comm-3-b-linux"         = merge(local.b_linux, { max = 200 })
    "comm-3-b-linux-large"   = merge(local.b_linux_large, { max = 10 })

    "mobile-3-b-linux-large" = { types = ["c5d.2xlarge"], xvdb = 120, max = 100 }
    "mobile-3-decision"      = { types = ["m5d.large"], capacity = 2, min = 2, max = 10 }
    "glean-3-b-linux"        = { types = ["c5d.large"], xvdb = 120, min = 2, max = 100 }
    "app-services-3-b-linux" = { types = ["c5d.4xlarge"], xvdb = 120, max = 100 }
    # NSS used the level 1 image at level 3 too.
    "nss-3-linux"            = { types = ["m5d.xlarge"], ami = ami_set.docker-worker, max = 150 }
  }

  # Each pool with its level's image and network and the defaults filled in.
  linux = merge(
    { for id, pool in local.linux_untrusted : id => merge(local.linux_pool, local.untrusted, pool) },
    { for id, pool in local.linux_trusted : id => merge(local.linux_pool, local.trusted, pool) },
  )
}

worker_type "linux" {
  for_each = local.linux
  name     = each.key # the pool's id, not "linux-<id>"
  ami_set  = each.value.ami
  key_pair = key_pair.workers
  regions  = local.us_regions
  network  = each.value.network

  # /dev/xvdb belongs to the worker type when all its instance types have it
  # (no `nvme`), else to each instance type that has it.
  dynamic "volume" {
    for_each = each.value.xvdb > 0 && length(each.value.nvme) == 0 ? ["/dev/xvdb"] : []
    labels   = [volume.value]
    content {
      size_gb = each.value.xvdb
      type    = "gp2"
    }
  }

  dynamic "instance_type" {
    for_each = each.value.types
    labels   = [instance_type.value]
    content {
      capacity = each.value.capacity
      dynamic "volume" {
        for_each = (
          length(each.value.nvme) > 0 && !contains(each.value.nvme, instance_type.value)
          ? ["/dev/xvdb"] : []
        )
        labels = [volume.value]
        content {
          size_gb = each.value.xvdb
          type    = "gp2"
        }
      }
    }
  }

  capacity {
    min = each.value.min
    max = each.value.max
  }

  market       = "spot"
  max_lifetime = "96h"
  tags         = local.tags
  user_data = templatefile("userdata/docker-worker.sh", {
    worker_type = each.key
    root_url    = var.root_url
    capacity    = each.value.capacity
  })
}

# The bare-metal test hosts, written out: their two instance types run
# different numbers of tasks, so m5.metal has user data of its own.
worker_type "gecko-t-t-linux-metal" {
  ami_set  = ami_set.docker-worker-baremetal
  key_pair = key_pair.workers
  regions  = local.us_regions
  network  = network.untrusted

  instance_type "r5.metal" { capacity = 32 }
  instance_type "m5.metal" {
    capacity = 15
    user_data = templatefile("userdata/docker-worker.sh", {
      worker_type = "gecko-t-t-linux-metal"
      root_url    = var.root_url
      capacity    = 15
    })
  }

  capacity {
    min = 0
    max = 720
  }

  market       = "spot"
  max_lifetime = "96h"
  tags         = local.tags
  user_data = templatefile("userdata/docker-worker.sh", {
    worker_type = "gecko-t-t-linux-metal"
    root_url    = var.root_url
    capacity    = 32
  })
}
