# The smallest useful fleet: one region, one image, two worker types.
# Try it: `fleetform validate examples/quickstart`.

fleet "quickstart" {
  account_id      = "123456789012" # the local EC2 endpoint's account
  regions         = ["us-east-1"]
  rollback_window = "30d"

  budget {
    max_hourly_usd = 5
  }

  limits {
    max_launches     = 10
    max_terminations = 10
  }
}

variable "owner" {
  description = "Team that owns the workers; tagged on every instance."
  default     = "releng"
}

locals {
  tags = {
    owner = var.owner
  }
}

key_pair "workers" {
  public_key = file("keys/workers.pub")
}

# Ubuntu 16.04, as shipped by the local EC2 endpoint (moto).
ami_set "ubuntu" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1" = "ami-785db401"
  }
  retain = "30d"
}
