#!/bin/sh
# docker-worker start-up. The worker type is passed explicitly:
# never derive it from the key pair or AMI name. Capacity is how many
# tasks the instance runs at once (its instance type's capacity).
cat > /etc/taskcluster/worker.json <<JSON
{"rootUrl": "${root_url}", "workerType": "${worker_type}", "capacity": ${capacity}}
JSON
exec /usr/local/bin/start-docker-worker
