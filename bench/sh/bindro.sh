#!/usr/bin/env bash
# usage: bindro.sh SRC DST N
set -euo pipefail
for ((i = 0; i < $3; i++)); do
  mount --bind "$1" "$2"
  mount -o remount,bind,ro "$2"
  umount "$2"
done
