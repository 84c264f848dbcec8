#!/usr/bin/env bash
# Start (or find running) the Docker engine the runtime tests use: Debian's dockerd with
# vfs storage, no iptables and no bridge, on its own socket and data root so it collides with
# nothing else on the machine. Prints the DOCKER_HOST to use. Idempotent.
set -euo pipefail
root="${HEARTH_TEST_DOCKER_ROOT:-/var/lib/hearth-dockerd}"
sock="$root/run/docker.sock"
export DOCKER_HOST="unix://$sock"
if docker version >/dev/null 2>&1; then echo "$DOCKER_HOST"; exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd.sh: dockerd not installed (apt-get install docker.io)" >&2; exit 1; }
mkdir -p "$root/data" "$root/exec" "$root/run"
nohup dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
  --data-root "$root/data" --exec-root "$root/exec" --pidfile "$root/run/dockerd.pid" \
  --host "$DOCKER_HOST" >"$root/dockerd.log" 2>&1 &
for _ in $(seq 1 60); do
  docker version >/dev/null 2>&1 && { echo "$DOCKER_HOST"; exit 0; }
  sleep 0.5
done
echo "dockerd.sh: dockerd did not start; see $root/dockerd.log" >&2
tail -20 "$root/dockerd.log" >&2
exit 1
