#!/bin/sh
# docker-worker start-up. The worker type is passed explicitly:
# never derive it from the key pair or AMI name.
cat > /etc/taskcluster/worker.json <<JSON
{"rootUrl": "${root_url}", "workerType": "${worker_type}"}
JSON
exec /usr/local/bin/start-docker-worker
