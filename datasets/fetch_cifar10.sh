#!/usr/bin/env bash
# fetch_cifar10.sh [DIR]: download CIFAR-10 (binary version) into DIR/cifar-10-batches-bin.
# DIR defaults to $CBNN_DATA, else data (what cifar10_load reads by default).
# The download resumes (curl -C - / wget -c) and the tarball's MD5 is checked
# before anything is unpacked; a bad tarball is kept aside and the script fails.
# CIFAR10_URL overrides the address (e.g. file:///path/to/cifar-10-binary.tar.gz).
set -euo pipefail

DIR="${1:-${CBNN_DATA:-data}}"
URL="${CIFAR10_URL:-https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz}"
MD5="${CIFAR10_MD5:-c32a1d4ab5d03f1284b67883e8d87530}"
TAR="$DIR/cifar-10-binary.tar.gz"
OUT="$DIR/cifar-10-batches-bin"

die() { echo "fetch_cifar10: $*" >&2; exit 1; }

if [ -f "$OUT/data_batch_5.bin" ] && [ -f "$OUT/test_batch.bin" ] && [ -f "$OUT/batches.meta.txt" ]; then
    echo "fetch_cifar10: $OUT already present; nothing to do"
    exit 0
fi
mkdir -p "$DIR" || die "cannot create $DIR"

md5_of() { md5sum "$1" | cut -d' ' -f1; }

if [ -f "$TAR" ] && [ "$(md5_of "$TAR")" = "$MD5" ]; then
    echo "fetch_cifar10: $TAR already downloaded (MD5 ok)"
else
    echo "fetch_cifar10: downloading $URL -> $TAR (resumable)"
    if command -v curl >/dev/null 2>&1; then
        # -C - resumes a partial file; -f fails on HTTP errors
        curl -fL --retry 3 -C - -o "$TAR" "$URL" || die "download failed: $URL (rerun to resume)"
    elif command -v wget >/dev/null 2>&1; then
        wget -c -O "$TAR" "$URL" || die "download failed: $URL (rerun to resume)"
    else
        die "neither curl nor wget is installed"
    fi
    got="$(md5_of "$TAR")"
    if [ "$got" != "$MD5" ]; then
        mv -f "$TAR" "$TAR.bad"
        die "MD5 mismatch for $TAR: got $got, expected $MD5 (moved to $TAR.bad; rerun to download again)"
    fi
    echo "fetch_cifar10: MD5 ok ($MD5)"
fi

tar -xzf "$TAR" -C "$DIR" || die "cannot unpack $TAR"
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin batches.meta.txt; do
    [ -f "$OUT/$f" ] || die "$TAR unpacked but $OUT/$f is missing"
done
echo "fetch_cifar10: CIFAR-10 ready in $OUT"
