#!/bin/sh
# Builds speechsvc's image with podman or docker, whichever works here: `make image` and `make image-cuda`.
#     deploy/container/build.sh cpu|cuda
# Environment (all optional):
#   IMAGE             the tag (default speechsvc:latest, speechsvc:cuda for the CUDA target)
#   BASE_IMAGE        any Debian-based image with python3 and venv. Unset: the official python slim image
#                     when it is here or can be pulled, else one made with debootstrap (no registry needed)
#   PIP_CERT          a CA bundle pip needs (a TLS-inspecting proxy): given to the build as a secret
#   WHEELHOUSE        a directory of wheels: an offline build (pip never reaches an index)
#   CONTAINER_ENGINE  podman or docker (default: podman when installed, else docker when its daemon answers)
#   SPEECHSVC_SYSTEM_PODMAN  set: the machine's own podman settings. Unset: deploy/podman's (runc,
#                     cgroupfs, storage cached in /var/tmp/speechsvc-containers: see settings.sh), which
#                     work in a VM without systemd
# Prints the build time and the image's size.
set -eu
target=${1:-cpu}
case $target in cpu | cuda) ;; *) echo "usage: $0 cpu|cuda" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
OFFICIAL_BASE=docker.io/library/python:3.12-slim-bookworm
DEBOOTSTRAP_BASE=localhost/speechsvc-base:bookworm
CACHE=/var/tmp/speechsvc-containers

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  else
    echo "speechsvc: neither podman nor a running docker here: install podman (make container-tools, as root)" >&2
    exit 1
  fi
fi
if [ "$engine" = podman ] && [ -z "${SPEECHSVC_SYSTEM_PODMAN:-}" ]; then
  for setting in $("$root/deploy/podman/settings.sh"); do export "${setting?}"; done
fi

# A base image made with debootstrap (Debian bookworm, python3 and venv), for machines that reach no
# image registry: made once, kept in the engine's storage.
debootstrap_base() {
  if $engine image inspect "$DEBOOTSTRAP_BASE" >/dev/null 2>&1; then return; fi
  command -v debootstrap >/dev/null || {
    echo "speechsvc: no base image: $OFFICIAL_BASE cannot be pulled and debootstrap is missing (make container-tools, as root)" >&2
    exit 1
  }
  rootfs="$CACHE/rootfs-bookworm.$$"
  mkdir -p "$CACHE"
  echo "making the base image $DEBOOTSTRAP_BASE with debootstrap ($rootfs)" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 || {
    tail -20 "$CACHE/debootstrap.log" >&2
    rm -rf "$rootfs"
    exit 1
  }
  # what a slim image leaves out: package caches, documentation, man pages, locales
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | $engine import - "$DEBOOTSTRAP_BASE" >/dev/null
  rm -rf "$rootfs"
}

if [ -z "${BASE_IMAGE:-}" ]; then
  if $engine image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 || $engine pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    BASE_IMAGE=$OFFICIAL_BASE
  else
    debootstrap_base
    BASE_IMAGE=$DEBOOTSTRAP_BASE
  fi
fi

if [ "$target" = cuda ]; then image=${IMAGE:-speechsvc:cuda}; else image=${IMAGE:-speechsvc:latest}; fi
set -- --target "$target" --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$root/Containerfile" -t "$image"
if [ "$engine" = podman ]; then set -- "$@" --format docker; fi  # docker format keeps the HEALTHCHECK
if [ -n "${PIP_CERT:-}" ]; then set -- "$@" --secret "id=pip_cert,src=$PIP_CERT"; fi
if [ -n "${WHEELHOUSE:-}" ]; then
  [ "$engine" = podman ] || { echo "speechsvc: WHEELHOUSE needs podman (docker build mounts no volumes)" >&2; exit 2; }
  set -- "$@" --build-arg WHEELHOUSE=/run/wheelhouse -v "$(cd "$WHEELHOUSE" && pwd):/run/wheelhouse:ro"
fi
echo "building $image ($target) from $BASE_IMAGE with $engine" >&2
start=$(date +%s)
$engine build "$@" "$root"
seconds=$(($(date +%s) - start))
bytes=$($engine image inspect --format '{{.Size}}' "$image")
echo "image $image: $(awk "BEGIN { printf \"%.2f\", $bytes / 1024 / 1024 / 1024 }") GiB, built in ${seconds} s" >&2
