worker_type "gecko-1-b-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5d.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5d.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5dn.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 1000
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-1-b-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5d.9xlarge" { capacity = 1 }
  instance_type "m5d.12xlarge" { capacity = 1 }
  instance_type "m5.12xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m4.10xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5.9xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c4.8xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-b-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-1-b-linux-xlarge" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5d.18xlarge" { capacity = 1 }
  instance_type "m5d.24xlarge" { capacity = 1 }
  instance_type "m5.24xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m4.16xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5.18xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-b-linux-xlarge", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-1-decision" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5d.xlarge" { capacity = 2 }
  instance_type "m5d.xlarge" { capacity = 2 }

  capacity {
    min = 5
    max = 40
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-decision", root_url = var.root_url, capacity = 2 })
  tags         = local.tags
}

worker_type "gecko-1-images" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5d.xlarge" { capacity = 1 }
  instance_type "m5d.xlarge" { capacity = 1 }
  instance_type "c5.xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 30
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-images", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-2-b-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5d.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5d.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5dn.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 1000
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-2-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-2-b-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5d.9xlarge" { capacity = 1 }
  instance_type "m5d.12xlarge" { capacity = 1 }
  instance_type "m5.12xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m4.10xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5.9xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c4.8xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-2-b-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-3-b-linux" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "c5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5d.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5d.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5dn.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 1000
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-3-b-linux-large" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "c5d.9xlarge" { capacity = 1 }
  instance_type "m5d.12xlarge" { capacity = 1 }
  instance_type "m5.12xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m4.10xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5.9xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c4.8xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-b-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-3-b-linux-xlarge" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "c5d.18xlarge" { capacity = 1 }
  instance_type "m5d.24xlarge" { capacity = 1 }
  instance_type "m5.24xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m4.16xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5.18xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-b-linux-xlarge", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-3-decision" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "c5d.xlarge" { capacity = 2 }
  instance_type "m5d.xlarge" { capacity = 2 }

  capacity {
    min = 5
    max = 20
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-decision", root_url = var.root_url, capacity = 2 })
  tags         = local.tags
}

worker_type "gecko-3-images" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "c5d.xlarge" { capacity = 1 }
  instance_type "m5d.xlarge" { capacity = 1 }
  instance_type "c5.xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 30
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-images", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "comm-1-b-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5d.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5d.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5dn.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 200
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-1-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "comm-1-b-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "c5d.9xlarge" { capacity = 1 }
  instance_type "m5d.12xlarge" { capacity = 1 }
  instance_type "m5.12xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m4.10xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5.9xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c4.8xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-1-b-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "comm-3-b-linux" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "c5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5d.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5d.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5n.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m5dn.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 200
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-3-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "comm-3-b-linux-large" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "c5d.9xlarge" { capacity = 1 }
  instance_type "m5d.12xlarge" { capacity = 1 }
  instance_type "m5.12xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "m4.10xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c5.9xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }
  instance_type "c4.8xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 120
      type    = "gp2"
    }
  }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-3-b-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-1-b-linux-aws" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5d.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 50
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-b-linux-aws", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-3-b-linux-aws" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5.4xlarge" { capacity = 1 }
  instance_type "c5d.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 50
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-b-linux-aws", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-t-t-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 32
    type    = "gp2"
  }

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min = 0
    max = 2500
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-t-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-t-t-linux-xlarge" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "m5.xlarge" { capacity = 1 }
  instance_type "m5a.xlarge" { capacity = 1 }
  instance_type "m5d.xlarge" { capacity = 1 }
  instance_type "c5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 1500
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-t-linux-xlarge", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-t-t-linux-xlarge-source" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "m5.xlarge" { capacity = 1 }
  instance_type "m5a.xlarge" { capacity = 1 }
  instance_type "m5d.xlarge" { capacity = 1 }
  instance_type "c5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 200
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-t-linux-xlarge-source", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "gecko-t-t-linux-metal" {
  ami_set  = ami_set.docker-worker-baremetal
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "r5.metal" { capacity = 32 }
  instance_type "m5.metal" {
    capacity  = 15
    user_data = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-t-linux-metal", root_url = var.root_url, capacity = 15 })
  }

  capacity {
    min = 0
    max = 720
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-t-linux-metal", root_url = var.root_url, capacity = 32 })
  tags         = local.tags
}

worker_type "gecko-t-misc" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "r5d.xlarge" { capacity = 8 }
  instance_type "m5d.xlarge" { capacity = 8 }
  instance_type "c5d.xlarge" { capacity = 8 }

  capacity {
    min = 0
    max = 32
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-misc", root_url = var.root_url, capacity = 8 })
  tags         = local.tags
}

worker_type "comm-t-t-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 32
    type    = "gp2"
  }

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min = 0
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-t-t-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "comm-t-t-linux-xlarge" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "m5.xlarge" { capacity = 1 }
  instance_type "m5a.xlarge" { capacity = 1 }
  instance_type "m5d.xlarge" { capacity = 1 }
  instance_type "c5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-t-t-linux-xlarge", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "mobile-1-b-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5d.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 50
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "mobile-1-b-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "mobile-1-decision" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "m5d.large" { capacity = 2 }

  capacity {
    min = 2
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "mobile-1-decision", root_url = var.root_url, capacity = 2 })
  tags         = local.tags
}

worker_type "glean-1-b-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5d.large" { capacity = 1 }

  capacity {
    min = 2
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "glean-1-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "nss-1-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  instance_type "m5d.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 150
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "nss-1-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "app-services-1-b-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5d.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 50
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "app-services-1-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "mobile-3-b-linux-large" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5d.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "mobile-3-b-linux-large", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "mobile-3-decision" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "m5d.large" { capacity = 2 }

  capacity {
    min = 2
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "mobile-3-decision", root_url = var.root_url, capacity = 2 })
  tags         = local.tags
}

worker_type "glean-3-b-linux" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5d.large" { capacity = 1 }

  capacity {
    min = 2
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "glean-3-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "nss-3-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  instance_type "m5d.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 150
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "nss-3-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "app-services-3-b-linux" {
  ami_set  = ami_set.docker-worker-trusted
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.trusted

  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp2"
  }

  instance_type "c5d.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "app-services-3-b-linux", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "code-review-bot" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 10
    type    = "gp2"
  }

  instance_type "m5.large" { capacity = 1 }
  instance_type "m5a.large" { capacity = 1 }
  instance_type "m5d.large" { capacity = 1 }
  instance_type "m4.large" { capacity = 1 }

  capacity {
    min = 1
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "code-review-bot", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "code-coverage-bot" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 100
    type    = "gp2"
  }

  instance_type "r5.large" { capacity = 1 }
  instance_type "r5d.large" { capacity = 1 }
  instance_type "r5a.large" { capacity = 1 }
  instance_type "r5ad.large" { capacity = 1 }
  instance_type "z1d.large" { capacity = 1 }
  instance_type "m5.xlarge" { capacity = 1 }
  instance_type "m5a.xlarge" { capacity = 1 }
  instance_type "m5d.xlarge" { capacity = 1 }
  instance_type "m4.xlarge" { capacity = 1 }
  instance_type "c5.2xlarge" { capacity = 1 }
  instance_type "c5d.2xlarge" { capacity = 1 }

  capacity {
    min = 1
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "code-coverage-bot", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}

worker_type "project-relman-relman-svc" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-1", "us-west-2"]
  network  = network.untrusted

  volume "/dev/xvdb" {
    size_gb = 100
    type    = "gp2"
  }

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min = 0
    max = 2
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "project-relman-relman-svc", root_url = var.root_url, capacity = 1 })
  tags         = local.tags
}
