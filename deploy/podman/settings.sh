#!/bin/sh
# Prints the podman settings for speechsvc's builds and tests, as lines of NAME=VALUE:
# CONTAINERS_CONF (runc, cgroupfs: a VM without systemd) and CONTAINERS_STORAGE_CONF (overlay when
# podman can use it here, else vfs). Used by deploy/container/build.sh and tests/containers/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
echo "CONTAINERS_CONF=$here/containers.conf"
if CONTAINERS_CONF="$here/containers.conf" CONTAINERS_STORAGE_CONF="$here/storage.conf" \
  podman info >/dev/null 2>&1; then
  echo "CONTAINERS_STORAGE_CONF=$here/storage.conf"
else
  echo "CONTAINERS_STORAGE_CONF=$here/storage-vfs.conf"
fi
