#!/usr/bin/env bash
# usage: samefs.sh A B C N
set -euo pipefail
for ((i = 0; i < $4; i++)); do
  devs=$(stat -c %d "$1" "$2" "$3" | sort -u | wc -l)
  [ "$devs" -eq 1 ]
done
