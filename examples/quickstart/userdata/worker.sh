#!/bin/sh
# Worker identity is explicit: the worker type comes from here and from the
# launch template's fleetform:worker-type tag, never from a key or AMI name.
echo "worker_type=${worker_type}" > /etc/worker.conf
exec /usr/local/bin/start-worker --worker-type "${worker_type}"
