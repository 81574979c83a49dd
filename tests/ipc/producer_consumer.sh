#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# The C examples as two processes over a socket path: every byte and sequence number checked,
# through libparallax and through the socket-copy baseline.
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/px-pc-XXXXXX)
trap 'rm -rf "$dir"' EXIT
for mode in "" "--socket-copy"; do
  "$bin/px_producer" "$dir/s" 40 1048577 $mode &
  producer=$!
  "$bin/px_consumer" "$dir/s" 40 --verify $mode
  wait $producer
done
echo "producer_consumer: 2 passed, 0 failed"
