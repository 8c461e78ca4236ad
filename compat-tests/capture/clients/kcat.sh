#!/usr/bin/env bash
# Capture scenario for kcat (librdkafka as packaged by Debian).
# kcat has no admin API: the topic is auto-created by a Metadata request for it.
set -euo pipefail
B=${1:?usage: kcat.sh BOOTSTRAP}
T=${TOPIC:-capture-kcat}
kcat -b "$B" -L
# Metadata for the topic auto-creates it; producing into a topic whose leader
# is known keeps each kcat -P run to a single batch (one Produce request).
kcat -b "$B" -L -t "$T"
printf 'k1:v1\nk2:v2\nk3:v3\n' | kcat -b "$B" -P -t "$T" -p 0 -K: -X linger.ms=200
# librdkafka sends a batch uncompressed when compressing does not shrink it:
# give the gzip batch compressible values.
PAD=$(printf 'gregor%.0s' $(seq 40))
printf 'k4:v4-%s\nk5:v5-%s\n' "$PAD" "$PAD" | kcat -b "$B" -P -t "$T" -p 0 -K: -X linger.ms=200 -z gzip
kcat -b "$B" -C -t "$T" -p 0 -o beginning -e -f 'p=%p o=%o k=%k v=%s\n'
kcat -b "$B" -Q -t "$T:0:-1"   # ListOffsets: latest
kcat -b "$B" -Q -t "$T:0:0"    # ListOffsets: by timestamp 0
