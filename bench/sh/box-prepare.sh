#!/usr/bin/env bash
# The steps of `boxlite-layout box prepare ID --home HOME --isolate-mounts`,
# as a jailer script does them with coreutils and util-linux (no lock, no
# checks): the home's dirs, the box's dirs, the socket link, a read-only
# bind of mounts/ at shared/.
# usage: box-prepare.sh HOME ID LINKDIR
set -euo pipefail
home=$1 id=$2 links=$3
box=$home/boxes/$id
mkdir -p "$home/boxes" "$home/bases" "$home/tmp" "$home/images/layers" "$home/images/manifests" "$home/images/disk-images"
mkdir -p "$box/sockets" "$links"
ln -sfn "$box/sockets" "$links/$id"
mkdir -p "$box/tmp" "$box/disks" "$box/mounts" "$box/logs" "$box/shared"
mount --bind "$box/mounts" "$box/shared"
mount -o remount,bind,ro "$box/shared"
