worker_type "gecko-1-b-win2012" {
  ami_set  = ami_set.win2012-builder
  key_pair = key_pair.workers
  network  = network.windows

  root_volume {
    size_gb = 40
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c4.4xlarge" { capacity = 1 }
  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 512
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-1-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-2-b-win2012" {
  ami_set  = ami_set.win2012-builder
  key_pair = key_pair.workers
  network  = network.windows

  root_volume {
    size_gb = 40
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c4.4xlarge" { capacity = 1 }
  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 512
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-2-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-3-b-win2012" {
  ami_set  = ami_set.win2012-builder-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  root_volume {
    size_gb = 40
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c4.4xlarge" { capacity = 1 }
  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 600
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-3-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "comm-1-b-win2012" {
  ami_set  = ami_set.win2012-builder
  key_pair = key_pair.workers
  network  = network.windows

  root_volume {
    size_gb = 40
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c4.4xlarge" { capacity = 1 }
  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 512
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "comm-1-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "comm-3-b-win2012" {
  ami_set  = ami_set.win2012-builder-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  root_volume {
    size_gb = 40
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c4.4xlarge" { capacity = 1 }
  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 600
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "comm-3-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-t-win7-32" {
  ami_set  = ami_set.win7-tester
  key_pair = key_pair.workers
  network  = network.windows

  root_volume {
    size_gb = 30
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c4.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 256
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-t-t-win7-32", root_url = var.root_url })
  tags         = local.tags

  # An older image: instance metadata v1 stays allowed (see README.md).
  metadata {
    http_tokens = "optional"
    hop_limit   = 1
  }
}

worker_type "gecko-t-t-win7-32-gpu" {
  ami_set  = ami_set.win7-tester-gpu
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.windows

  root_volume {
    size_gb = 30
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "g2.2xlarge" { capacity = 1 }
  instance_type "g3.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 128
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-t-t-win7-32-gpu", root_url = var.root_url })
  tags         = local.tags

  # An older image: instance metadata v1 stays allowed (see README.md).
  metadata {
    http_tokens = "optional"
    hop_limit   = 1
  }
}

worker_type "nss-1-win2012r2" {
  ami_set  = ami_set.nss-win2012
  key_pair = key_pair.workers
  regions  = ["us-west-1", "us-west-2"]
  network  = network.windows

  instance_type "m5d.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 150
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "nss-1-win2012r2", root_url = var.root_url })
  tags         = local.tags
}

worker_type "nss-3-win2012r2" {
  ami_set  = ami_set.nss-win2012
  key_pair = key_pair.workers
  regions  = ["us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "m5d.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 150
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "nss-3-win2012r2", root_url = var.root_url })
  tags         = local.tags
}

worker_type "relops-3-win2019" {
  ami_set  = ami_set.win2019-image-builder
  key_pair = key_pair.workers
  network  = network.trusted

  root_volume {
    size_gb = 40
    type    = "gp2"
  }
  volume "/dev/sdb" {
    size_gb = 120
    type    = "gp2"
  }
  volume "/dev/sdc" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 12
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "relops-3-win2019", root_url = var.root_url })
  tags         = local.tags
}
