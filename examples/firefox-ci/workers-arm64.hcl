worker_type "gecko-1-b-linux-aarch64" {
  ami_set  = ami_set.generic-worker-arm64
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-2"]

  instance_type "c6g.4xlarge" { capacity = 1 }
  instance_type "c7g.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 30
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-b-linux-aarch64", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-2-b-linux-aarch64" {
  ami_set  = ami_set.generic-worker-arm64
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-2"]

  instance_type "c6g.4xlarge" { capacity = 1 }
  instance_type "c7g.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 30
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-2-b-linux-aarch64", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-3-b-linux-aarch64" {
  ami_set  = ami_set.generic-worker-arm64
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-2"]

  instance_type "c6g.4xlarge" { capacity = 1 }
  instance_type "c7g.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 30
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-b-linux-aarch64", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-aarch64" {
  ami_set  = ami_set.generic-worker-arm64
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-2"]

  instance_type "m6g.xlarge" { capacity = 1 }
  instance_type "m7g.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 80
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-aarch64", root_url = var.root_url })
  tags         = local.tags
}
