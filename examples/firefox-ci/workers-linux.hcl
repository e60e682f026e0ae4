worker_type "gecko-t-linux-small" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "t3.medium" { capacity = 1 }

  capacity {
    min = 0
    max = 200
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-small", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-medium" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.large" { capacity = 1 }
  instance_type "c5.large" { capacity = 1 }

  capacity {
    min = 0
    max = 300
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-medium", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.xlarge" { capacity = 1 }
  instance_type "c5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 400
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-large", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-xlarge" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.2xlarge" { capacity = 1 }
  instance_type "c5.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 150
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-xlarge", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-2xlarge" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.4xlarge" { capacity = 1 }
  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 60
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-2xlarge", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-gpu" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-2"]

  instance_type "g4dn.xlarge" { capacity = 1 }
  instance_type "g4dn.2xlarge" { capacity = 2 }

  capacity {
    min = 0
    max = 20
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-gpu", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-talos-sim" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1"]

  instance_type "c5.metal" { capacity = 4 }

  capacity {
    min = 0
    max = 8
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-talos-sim", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-1-b-linux" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 120
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-b-linux", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-1-b-linux-large" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.9xlarge" { capacity = 2 }
  instance_type "c5.18xlarge" { capacity = 4 }

  capacity {
    min = 0
    max = 40
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-b-linux-large", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-1-images" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-images", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-1-decision" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min = 0
    max = 20
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-1-decision", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-2-b-linux" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 60
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-2-b-linux", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-2-b-linux-large" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.9xlarge" { capacity = 2 }
  instance_type "c5.18xlarge" { capacity = 4 }

  capacity {
    min = 0
    max = 40
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-2-b-linux-large", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-2-images" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-2-images", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-2-decision" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min = 0
    max = 20
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-2-decision", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-3-b-linux" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 40
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-b-linux", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-3-b-linux-large" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.9xlarge" { capacity = 2 }
  instance_type "c5.18xlarge" { capacity = 4 }

  capacity {
    min = 0
    max = 40
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-b-linux-large", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-3-images" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 10
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-images", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-3-decision" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min = 1
    max = 20
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-3-decision", root_url = var.root_url })
  tags         = local.tags
}

worker_type "comm-1-b-linux" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 40
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-1-b-linux", root_url = var.root_url })
  tags         = local.tags
}

worker_type "mobile-1-b-android" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 60
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "mobile-1-b-android", root_url = var.root_url })
  tags         = local.tags
}

worker_type "app-services-1-b-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-2"]

  instance_type "m5.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 20
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "app-services-1-b-linux", root_url = var.root_url })
  tags         = local.tags
}

worker_type "comm-3-b-linux" {
  ami_set  = ami_set.gecko-builder
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 40
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-3-b-linux", root_url = var.root_url })
  tags         = local.tags
}

worker_type "mobile-3-b-android" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }
  instance_type "m5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 60
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "mobile-3-b-android", root_url = var.root_url })
  tags         = local.tags
}

worker_type "app-services-3-b-linux" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1", "us-west-2"]

  instance_type "m5.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 20
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "app-services-3-b-linux", root_url = var.root_url })
  tags         = local.tags
}

worker_type "comm-t-linux-large" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers

  instance_type "m5.xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 100
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-t-linux-large", root_url = var.root_url })
  tags         = local.tags
}

worker_type "mobile-t-android-emulator" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1"]

  instance_type "c5.metal" { capacity = 4 }
  instance_type "m5.metal" { capacity = 4 }

  capacity {
    min = 0
    max = 40
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "mobile-t-android-emulator", root_url = var.root_url })
  tags         = local.tags
}

worker_type "translations-1-b-linux-gpu" {
  ami_set  = ami_set.docker-worker
  key_pair = key_pair.workers
  regions  = ["us-east-1"]

  instance_type "g5.xlarge" { capacity = 1 }
  instance_type "g5.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 10
  }

  market       = "on-demand"
  max_lifetime = "7d"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "translations-1-b-linux-gpu", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-linux-legacy-pv" {
  ami_set  = ami_set.legacy-pv
  key_pair = key_pair.workers
  regions  = ["us-east-1"]

  instance_type "m3.large" { capacity = 1 }
  instance_type "m3.xlarge" { capacity = 2 }

  capacity {
    min = 0
    max = 20
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "gecko-t-linux-legacy-pv", root_url = var.root_url })
  tags         = local.tags
}

worker_type "comm-t-linux-legacy-pv" {
  ami_set  = ami_set.legacy-pv
  key_pair = key_pair.workers
  regions  = ["us-east-1"]

  instance_type "m3.large" { capacity = 1 }

  capacity {
    min = 0
    max = 10
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/docker-worker.sh", { worker_type = "comm-t-linux-legacy-pv", root_url = var.root_url })
  tags         = local.tags
}
