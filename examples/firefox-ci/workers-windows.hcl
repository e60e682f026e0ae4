worker_type "gecko-1-b-win2012" {
  ami_set  = ami_set.generic-worker-win2012
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 60
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-1-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-2-b-win2012" {
  ami_set  = ami_set.generic-worker-win2012
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 30
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-2-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-3-b-win2012" {
  ami_set  = ami_set.generic-worker-win2012
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 20
  }

  market       = "on-demand"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-3-b-win2012", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-win10-64" {
  ami_set  = ami_set.generic-worker-win2016
  key_pair = key_pair.workers

  instance_type "c5.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 300
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-t-win10-64", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-win10-64-gpu" {
  ami_set  = ami_set.generic-worker-win2016
  key_pair = key_pair.workers

  instance_type "g4dn.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 40
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-t-win10-64-gpu", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-win11-64" {
  ami_set  = ami_set.generic-worker-win2016
  key_pair = key_pair.workers

  instance_type "c5.2xlarge" { capacity = 1 }
  instance_type "m5.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 300
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-t-win11-64", root_url = var.root_url })
  tags         = local.tags
}

worker_type "gecko-t-win11-64-large" {
  ami_set  = ami_set.generic-worker-win2016
  key_pair = key_pair.workers

  instance_type "c5.4xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 80
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "gecko-t-win11-64-large", root_url = var.root_url })
  tags         = local.tags
}

worker_type "comm-t-win10-64" {
  ami_set  = ami_set.generic-worker-win2016
  key_pair = key_pair.workers

  instance_type "c5.2xlarge" { capacity = 1 }

  capacity {
    min = 0
    max = 60
  }

  market       = "spot"
  max_lifetime = "96h"
  user_data    = templatefile("userdata/generic-worker.ps1", { worker_type = "comm-t-win10-64", root_url = var.root_url })
  tags         = local.tags
}
