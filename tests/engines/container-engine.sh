#!/usr/bin/env bash
# Start a container engine on a machine with no daemon and no image registry,
# and provide a local `python:3.11-slim` base image built from Debian packages.
# Seen working on this kind of machine as root: dockerd from Debian's docker.io
# with the vfs storage driver and no bridge networking (build and run with
# --network=none or --network=host), and a debootstrap of Debian bookworm.
#
#   eval "$(tests/engines/container-engine.sh)"      # prints: export DOCKER_HOST=...
#   tests/engines/container-engine.sh stop
#
# State lives under $KF_ENGINE_DIR (default /var/cache/kilnflow-engine), so the
# base image (about 4 minutes to build) is made once per machine.
set -euo pipefail
dir="${KF_ENGINE_DIR:-/var/cache/kilnflow-engine}"
sock="$dir/docker.sock"
mkdir -p "$dir"
if [ "${1:-}" = "stop" ]; then
  [ -f "$dir/dockerd.pid" ] && kill "$(cat "$dir/dockerd.pid")" 2>/dev/null || true
  exit 0
fi
log() { echo "container-engine: $*" >&2; }
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing docker.io and debootstrap (apt)"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >&2
fi
export DOCKER_HOST="unix://$sock"
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (vfs, no bridge)"
  nohup dockerd --data-root "$dir/data" --exec-root "$dir/exec" --host "$DOCKER_HOST" \
    --pidfile "$dir/dockerd.pid" --storage-driver=vfs --iptables=false --ip6tables=false \
    --bridge=none >"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see $dir/dockerd.log"; exit 1; }
fi
if ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
  if [ ! -f "$dir/base.tar" ]; then
    log "building a python:3.11-slim base image from Debian packages (once, ~4 min)"
    mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
    rm -rf "$dir/rootfs"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
      bookworm "$dir/rootfs" ${mirror:+"$mirror"} >"$dir/debootstrap.log" 2>&1
    rm -f "$dir"/rootfs/usr/lib/python3*/EXTERNALLY-MANAGED
    chroot "$dir/rootfs" apt-get clean && rm -rf "$dir/rootfs/var/lib/apt/lists/"*
    tar -C "$dir/rootfs" -cf "$dir/base.tar" . && rm -rf "$dir/rootfs"
  fi
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$dir/base.tar" python:3.11-slim >&2
fi
echo "export DOCKER_HOST=$DOCKER_HOST"
