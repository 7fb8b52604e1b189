#!/usr/bin/env bash
# What a jailer setup script does today, with coreutils and util-linux.
# usage: lifecycle.sh HOME SHIMDIR N ID_PREFIX LINKDIR
set -euo pipefail
home=$1 shim=$2 n=$3 prefix=$4 links=$5
mkdir -p "$links" && chmod 700 "$links"
for ((i = 0; i < n; i++)); do
  id=$(printf '%s%06d' "$prefix" "$i")
  box=$home/boxes/$id
  mkdir -p "$box/sockets"
  ln -s "$box/sockets" "$links/$id"
  mkdir -p "$box/tmp" "$box/disks" "$box/mounts" "$box/logs" "$box/shared" "$box/bin"
  mount --bind "$box/mounts" "$box/shared"
  mount -o remount,bind,ro "$box/shared"
  cp --reflink=always "$shim/boxlite-shim" "$shim/libkrunfw.so.5" "$shim/libkrunfw.so.5.1.0" "$box/bin/"
  umount "$box/shared"
  rm -rf "$box"
  rm -f "$links/$id"
done
