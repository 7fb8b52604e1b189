#!/usr/bin/env bash
# usage: clone.sh SRCDIR DSTDIR N REFLINK(always|auto); prints the ns spent copying
set -euo pipefail
total=0
for ((i = 0; i < $3; i++)); do
  t0=$(date +%s%N)
  cp --reflink="$4" "$1"/* "$2"/
  t1=$(date +%s%N)
  total=$((total + t1 - t0))
  rm -f "$2"/*
done
echo "{\"n\":$3,\"ns\":$total}"
