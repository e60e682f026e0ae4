# Three trust levels share one subnet per availability zone and differ in
# their security groups. Each network excludes, per zone, the families EC2
# did not offer there that its own worker types launch.

locals {
  us_subnets = {
    "us-east-1a" = "subnet-5c2244b8081af9004"
    "us-east-1b" = "subnet-3935007d1feca016a"
    "us-east-1c" = "subnet-87bf14cb815995687"
    "us-east-1d" = "subnet-0787c770a398e3a81"
    "us-east-1e" = "subnet-c27ca0ea429ad0ecb"
    "us-east-1f" = "subnet-219ae02a836432e1b"
    "us-west-1b" = "subnet-096c016ba64827180"
    "us-west-1c" = "subnet-4d55b8c1fb27a1c8c"
    "us-west-2a" = "subnet-c8552752897952b7f"
    "us-west-2b" = "subnet-b2b3227f5148a85e0"
    "us-west-2c" = "subnet-48f4cf750961c077e"
  }
  # Only Windows pools ran in Frankfurt, so the untrusted (Linux) network has no subnets there.
  all_subnets = merge(local.us_subnets, {
    "eu-central-1a" = "subnet-b93d23733ae253f62"
    "eu-central-1b" = "subnet-856acdcac9682cdf1"
    "eu-central-1c" = "subnet-fd73cd1a49b997878"
  })
}

# Linux workers that run untrusted code: level 1 and 2 builders, tests, bots.
network "untrusted" {
  subnets = local.us_subnets
  security_groups = {
    "us-east-1" = ["sg-c0a5d31761c8dd273"]
    "us-west-1" = ["sg-665534cf774cde9a2"]
    "us-west-2" = ["sg-4b8cf2e05da24b6fe"]
  }
  exclude = {
    "us-east-1a" = ["r5ad"]
    "us-east-1b" = ["r5ad"]
    "us-east-1c" = ["m5dn"]
    "us-east-1d" = ["r5ad"]
    "us-east-1e" = ["c5", "c5d", "c5n", "m5", "m5a", "m5d", "m5dn", "m5n", "r5a", "r5ad", "z1d"]
  }
}

# Level 3 (release) workers, Linux and Windows: no inbound access.
network "trusted" {
  subnets = local.all_subnets
  security_groups = {
    "us-east-1"    = ["sg-7466cb138ba9fb475"]
    "us-west-1"    = ["sg-fc41a700b293fac5f"]
    "us-west-2"    = ["sg-ba7979fc656623c91"]
    "eu-central-1" = ["sg-1ea57e48a6b0920c6"]
  }
  exclude = {
    "us-east-1c" = ["m5dn"]
    "us-east-1e" = ["c5", "c5d", "c5n", "m5", "m5d", "m5dn", "m5n"]
  }
}

# Windows workers of levels 1 and 2 and Windows tests (live logs served directly).
network "windows" {
  subnets = local.all_subnets
  security_groups = {
    "us-east-1"    = ["sg-6115adc94c77d7ca5"]
    "us-west-1"    = ["sg-3a8262c5a2be7b1f7"]
    "us-west-2"    = ["sg-661d6e7a90f533015"]
    "eu-central-1" = ["sg-3b5834bb9ff9803c5"]
  }
  exclude = {
    "us-east-1e" = ["c5"]
  }
}
