# Ubuntu 16.04 with docker-worker
ami_set "docker-worker" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-785db401"
    "us-west-2"    = "ami-785db401"
    "eu-central-1" = "ami-785db401"
  }
  retain = "30d"
}

# Amazon Linux builders
ami_set "gecko-builder" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-760aaa0f"
    "us-west-2"    = "ami-760aaa0f"
    "eu-central-1" = "ami-760aaa0f"
  }
  retain = "30d"
}

# Windows Server 2016 test workers
ami_set "generic-worker-win2016" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-b7e93bce"
    "us-west-2"    = "ami-b7e93bce"
    "eu-central-1" = "ami-b7e93bce"
  }
  retain = "30d"
}

# Windows Server 2012 R2 builders
ami_set "generic-worker-win2012" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-1ecc1e67"
    "us-west-2"    = "ami-1ecc1e67"
    "eu-central-1" = "ami-1ecc1e67"
  }
  retain = "30d"
}

# Graviton workers
ami_set "generic-worker-arm64" {
  virtualization = "hvm"
  architecture   = "arm64"
  images = {
    "us-east-1"    = "ami-0e9271c829888680e"
    "us-west-2"    = "ami-0e9271c829888680e"
    "eu-central-1" = "ami-0e9271c829888680e"
  }
  retain = "30d"
}

# paravirtual image for the last m3 workers
ami_set "legacy-pv" {
  virtualization = "pv"
  architecture   = "x86_64"
  images = {
    "us-east-1"    = "ami-8104a4f8"
    "us-west-2"    = "ami-8104a4f8"
    "eu-central-1" = "ami-8104a4f8"
  }
  retain = "30d"
}
