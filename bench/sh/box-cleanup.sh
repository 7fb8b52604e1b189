#!/usr/bin/env bash
# The steps of `boxlite-layout box cleanup ID --home HOME` in a jailer
# script: unmount shared/, remove the box and its socket link.
# usage: box-cleanup.sh HOME ID LINKDIR
set -euo pipefail
home=$1 id=$2 links=$3
box=$home/boxes/$id
umount "$box/shared"
rm -rf "$box"
rm -f "$links/$id"
