worker_type "linux-small" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers

  instance_type "t3.medium" { capacity = 1 }

  capacity {
    min = 1
    max = 4
  }

  market       = "spot"
  max_lifetime = "24h"
  user_data    = templatefile("userdata/worker.sh", { worker_type = "linux-small" })
  tags         = local.tags
}

worker_type "linux-large" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers

  instance_type "m5.xlarge" { capacity = 1 }
  instance_type "m5.2xlarge" { capacity = 2 }

  capacity {
    min = 0
    max = 4
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/worker.sh", { worker_type = "linux-large" })
  tags         = merge(local.tags, { size = "large" })
}
