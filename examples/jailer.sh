#!/bin/sh
# examples/jailer.sh: a jailer setup script. One box from id to teardown:
# prepare it with a read-only shared/ and the shim in bin/, run the shim in
# BoxLite's sandbox policy under bubblewrap, clean up whatever happens.
# Usage: sh examples/jailer.sh HOME SHIM [ARG...]   (as root; needs bwrap)
set -eu
home=$1 shim=$2
shift 2
id=$(boxlite-layout id)
trap 'boxlite-layout box cleanup "$id" --home "$home" >/dev/null' EXIT
boxlite-layout box prepare "$id" --home "$home" --isolate-mounts --require-read-only --shim "$shim"
box=$home/boxes/$id # BoxLite's layout
# The shim runs from the box's own copy; its exit code is the script's.
status=0
boxlite-layout box jail "$id" --home "$home" -- "$box/bin/$(basename "$shim")" "$@" || status=$?
boxlite-layout box inspect "$id" --home "$home"
exit "$status"
