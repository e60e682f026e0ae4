# docker-worker builders and tests, levels 1 and 2
ami_set "docker-worker" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1" = "ami-785db401"
    "us-west-1" = "ami-785db401"
    "us-west-2" = "ami-785db401"
  }
  retain = "30d"
}

# docker-worker for level 3 (its own image, with level 3 keys)
ami_set "docker-worker-trusted" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1" = "ami-1e749f67"
    "us-west-1" = "ami-1e749f67"
    "us-west-2" = "ami-1e749f67"
  }
  retain = "30d"
}

# docker-worker for the bare-metal test hosts
ami_set "docker-worker-baremetal" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1" = "ami-dca37ea5"
    "us-west-1" = "ami-dca37ea5"
    "us-west-2" = "ami-dca37ea5"
  }
  retain = "30d"
}

# Windows Server 2012 R2 builders, levels 1 and 2
ami_set "win2012-builder" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-1ecc1e67"
    "us-west-1"    = "ami-1ecc1e67"
    "us-west-2"    = "ami-1ecc1e67"
    "eu-central-1" = "ami-1ecc1e67"
  }
  retain = "30d"
}

# Windows Server 2012 R2 builders, level 3
ami_set "win2012-builder-trusted" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1" = "ami-24f3215d"
    "us-west-1" = "ami-24f3215d"
    "us-west-2" = "ami-24f3215d"
  }
  retain = "30d"
}

# Windows 7 (32-bit) test workers
ami_set "win7-tester" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-12c6146b"
    "us-west-1"    = "ami-12c6146b"
    "us-west-2"    = "ami-12c6146b"
    "eu-central-1" = "ami-12c6146b"
  }
  retain = "30d"
}

# Windows 7 (32-bit) test workers with GPU drivers
ami_set "win7-tester-gpu" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1" = "ami-d1cb19a8"
    "us-west-1" = "ami-d1cb19a8"
    "us-west-2" = "ami-d1cb19a8"
  }
  retain = "30d"
}

# Windows Server 2012 R2 for NSS
ami_set "nss-win2012" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-west-1" = "ami-a9cc1ed0"
    "us-west-2" = "ami-a9cc1ed0"
  }
  retain = "30d"
}

# Windows Server image builders
ami_set "win2019-image-builder" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-b7e93bce"
    "us-west-1"    = "ami-b7e93bce"
    "us-west-2"    = "ami-b7e93bce"
    "eu-central-1" = "ami-b7e93bce"
  }
  retain = "30d"
}
