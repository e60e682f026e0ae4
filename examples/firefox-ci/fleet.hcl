# FirefoxCI's AWS worker pools: 48 worker types over 4 regions, 3 networks,
# 44 instance types (see README.md). The pools are data in locals; a
# `worker_type` block with `for_each` per operating system makes them worker
# types (workers-linux.hcl, workers-windows.hcl).

fleet "firefox-ci" {
  account_id      = "123456789012"
  regions         = local.regions
  rollback_window = "30d"

  # Every worker type at max capacity, on demand: $24,534/h.
  # The workers run on spot, which costs a fraction of that.
  budget {
    max_hourly_usd = 31000
  }

  limits {
    max_launches     = 200
    max_terminations = 100
    max_deletions    = 10
  }
}

variable "owner" {
  description = "Team that owns the workers."
  default     = "releng"
}

variable "root_url" {
  description = "Taskcluster deployment the workers join."
  default     = "https://firefox-ci-tc.services.mozilla.com"
}

locals {
  # Linux pools run in the US regions only; some Windows pools add Frankfurt.
  us_regions = ["us-east-1", "us-west-1", "us-west-2"]
  regions    = concat(local.us_regions, ["eu-central-1"])

  tags = {
    owner   = var.owner
    project = "firefox-ci"
  }
}

key_pair "workers" {
  public_key = file("keys/workers.pub")
}
