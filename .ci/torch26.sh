#!/usr/bin/env bash
# Real PyTorch 2.6 (torch.distributed.checkpoint, gloo, torchrun) for the interoperability tests: a
# Debian trixie chroot with python3-torch 2.6, numpy and safetensors, built from Debian's packages
# with debootstrap (~2-3 minutes the first time; idempotent after that). Needs root and Debian's
# package mirror. The tests find it through OLMO_TORCH26_ROOT (default /opt/torch26) and skip, saying
# why, when it is not there (test/support/torch26.ts).
#   bash .ci/torch26.sh [DIR]
# Inside the chroot, /host-tmp is this machine's /tmp and /host is this machine's whole tree (a
# recursive bind of /), so a test hands files over through /tmp and torchrun starts our ranks with
# `chroot /host bun ...` (they run on this machine's files, /proc and /tmp).
# Debian's torch 2.6 is built without libuv: the tests set USE_LIBUV=0 for the stores torch creates.
set -euo pipefail
DIR=${1:-${OLMO_TORCH26_ROOT:-/opt/torch26}}
if [[ ! -x $DIR/usr/bin/torchrun ]]; then
  command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  [[ -x $DIR/usr/bin/apt-get ]] || debootstrap --variant=minbase trixie "$DIR" http://deb.debian.org/debian >/dev/null
  cp /etc/resolv.conf "$DIR/etc/resolv.conf"
fi
for d in proc sys dev; do mountpoint -q "$DIR/$d" || mount --bind "/$d" "$DIR/$d"; done
mkdir -p "$DIR/host-tmp" "$DIR/host"
mountpoint -q "$DIR/host-tmp" || mount --bind /tmp "$DIR/host-tmp"
if ! mountpoint -q "$DIR/host"; then
  mount --rbind / "$DIR/host"
  mount --make-rslave "$DIR/host" # unmounts inside never reach this machine's own mounts
fi
if [[ ! -x $DIR/usr/bin/torchrun ]]; then
  chroot "$DIR" apt-get update -qq
  chroot "$DIR" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-torch python3-numpy python3-safetensors libopenblas0 libgomp1 procps ca-certificates >/dev/null
fi
chroot "$DIR" python3 -c 'import torch, torch.distributed.checkpoint; print("torch", torch.__version__, "ready in '"$DIR"'")'
