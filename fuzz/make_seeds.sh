#!/bin/sh
# Regenerate fuzz/corpus/ (the seed corpora). Needs python3 and a C compiler
# with libjpeg (libjpeg62-turbo-dev).
set -e
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/make_seeds.py"
mkdir -p "$here/corpus/fuzz_jpeg"
tmp=$(mktemp -d)
${CC:-cc} -O1 -o "$tmp/gen_jpeg_seeds" "$here/gen_jpeg_seeds.c" -ljpeg
"$tmp/gen_jpeg_seeds" "$here/corpus/fuzz_jpeg"
rm -rf "$tmp"
echo "jpeg seeds written under $here/corpus/fuzz_jpeg"
