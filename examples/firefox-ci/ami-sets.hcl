# One image per kind of worker, the same id in each region it runs in (the
# local EC2 endpoint ships these in every region). Every set is hvm and
# x86_64, fleetform's defaults.

# docker-worker builders and tests, levels 1 and 2
ami_set "docker-worker" {
  images = { for r in local.us_regions : r => "ami-785db401" }
  retain = "30d"
}

# docker-worker for level 3 (its own image, with level 3 keys)
ami_set "docker-worker-trusted" {
  images = { for r in local.us_regions : r => "ami-1e749f67" }
  retain = "30d"
}

# docker-worker for the bare-metal test hosts
ami_set "docker-worker-baremetal" {
  images = { for r in local.us_regions : r => "ami-dca37ea5" }
  retain = "30d"
}

# Windows Server 2012 R2 builders, levels 1 and 2
ami_set "win2012-builder" {
  images = { for r in local.regions : r => "ami-1ecc1e67" }
  retain = "30d"
}

# Windows Server 2012 R2 builders, level 3
ami_set "win2012-builder-trusted" {
  images = { for r in local.us_regions : r => "ami-24f3215d" }
  retain = "30d"
}

# Windows 7 (32-bit) test workers
ami_set "win7-tester" {
  images = { for r in local.regions : r => "ami-12c6146b" }
  retain = "30d"
}

# Windows 7 (32-bit) test workers with GPU drivers
ami_set "win7-tester-gpu" {
  images = { for r in local.us_regions : r => "ami-d1cb19a8" }
  retain = "30d"
}

# Windows Server 2012 R2 for NSS, which ran in the two us-west regions only
ami_set "nss-win2012" {
  images = { for r in ["us-west-1", "us-west-2"] : r => "ami-a9cc1ed0" }
  retain = "30d"
}

# Windows Server image builders
ami_set "win2019-image-builder" {
  images = { for r in local.regions : r => "ami-b7e93bce" }
  retain = "30d"
}
