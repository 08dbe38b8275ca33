#!/usr/bin/env bash
# Download PASCAL VOC 2007 trainval + test and VOC 2012 trainval (the paper's
# "07+12 trainval -> 07 test", method.md 4.4) and unpack them into
# DIR/VOCdevkit/VOC2007 and DIR/VOCdevkit/VOC2012.
#
#   datasets/fetch_voc.sh [DIR]          (default DIR: data/voc)
#   then: voc_open_paper_split("DIR/VOCdevkit", VOC_TRAIN | VOC_TEST, ...)
#
# About 2.8 GB of tars (0.44 + 0.43 + 1.9 GB), 3.6 GB unpacked; both stay in
# DIR unless VOC_DELETE_TARS=1. Downloads resume (curl -C - / wget -c) into
# DIR/<tar>.part; a tar is unpacked only after its MD5 and SHA-256 match the
# values below, and a tar without a recorded checksum is never unpacked.
# VOC_BASE_URL replaces http://host.robots.ox.ac.uk/pascal/VOC when the Oxford
# server is down (a mirror with the same voc2007/ and voc2012/ layout; the
# checksums still apply).
#
# Checksums of the official tars (not published by the VOC site itself):
#   MD5     torchvision, torchvision/datasets/voc.py (DATASET_YEAR_DICT;
#           2007 test from the "2007-test" entry of later versions)
#   SHA-256 torchvision's prototype datasets, torchvision/prototype/datasets/
#           _builtin/voc.py (_TRAIN_VAL_ARCHIVES, _TEST_ARCHIVES)
set -euo pipefail

DIR=${1:-data/voc}
BASE=${VOC_BASE_URL:-http://host.robots.ox.ac.uk/pascal/VOC}

# name | url path | md5 | sha256 | expected ids (file:count) after unpacking
TARS=(
  "VOCtrainval_06-Nov-2007.tar|voc2007/VOCtrainval_06-Nov-2007.tar|c52e279531787c972589f7e41ab4ae64|7d8cd951101b0957ddfd7a530bdc8a94f06121cfc1e511bb5937e973020c7508|VOC2007/ImageSets/Main/trainval.txt:5011"
  "VOCtest_06-Nov-2007.tar|voc2007/VOCtest_06-Nov-2007.tar|b6e924de25625d8de591ea690078ad9f|6836888e2e01dca84577a849d339fa4f73e1e4f135d312430c4856b5609b4892|VOC2007/ImageSets/Main/test.txt:4952"
  "VOCtrainval_11-May-2012.tar|voc2012/VOCtrainval_11-May-2012.tar|6cd6e144f989b92b3379bac3b3de84fd|e14f763270cf193d0b5f74b169f44157a4b0c6efa708f4dd0ff78ee691763bcb|VOC2012/ImageSets/Main/trainval.txt:11540"
)

die() { echo "fetch_voc: $*" >&2; exit 1; }

download() { # url dest (resumes dest)
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 5 --retry-delay 10 -C - -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -c --tries=5 -O "$2" "$1"
  else
    die "neither curl nor wget is installed"
  fi
}

verify() { # file md5 sha256 -> 0 if both match
  local f=$1 md5=$2 sha=$3
  [[ -n "$md5" && -n "$sha" ]] || die "no checksum recorded for $(basename "$f"): refusing to unpack it"
  echo "fetch_voc: checking $(basename "$f") (MD5, SHA-256)"
  local got_md5 got_sha
  got_md5=$(md5sum "$f" | cut -d' ' -f1)
  got_sha=$(sha256sum "$f" | cut -d' ' -f1)
  if [[ "$got_md5" != "$md5" || "$got_sha" != "$sha" ]]; then
    echo "fetch_voc: $f: checksum mismatch" >&2
    echo "  md5    $got_md5 (expected $md5)" >&2
    echo "  sha256 $got_sha (expected $sha)" >&2
    return 1
  fi
}

mkdir -p "$DIR"
for entry in "${TARS[@]}"; do
  IFS='|' read -r name path md5 sha expect <<<"$entry"
  tar_file="$DIR/$name"
  done_mark="$DIR/.$name.unpacked"
  [[ -n "$md5" && -n "$sha" ]] || die "no checksum recorded for $name: refusing to download or unpack it"
  if [[ -e "$done_mark" ]]; then
    echo "fetch_voc: $name already unpacked"
    continue
  fi
  if [[ ! -e "$tar_file" ]]; then
    echo "fetch_voc: downloading $BASE/$path"
    download "$BASE/$path" "$tar_file.part" || die "download of $BASE/$path failed (run again to resume; VOC_BASE_URL selects a mirror)"
    if ! verify "$tar_file.part" "$md5" "$sha"; then
      mv -f "$tar_file.part" "$tar_file.bad"
      die "$name is not the official tar (kept as $tar_file.bad; a wrong mirror, an HTML error page or a corrupt resume?)"
    fi
    mv -f "$tar_file.part" "$tar_file"
  else
    verify "$tar_file" "$md5" "$sha" || die "$tar_file does not match; delete it and run again"
  fi
  echo "fetch_voc: unpacking $name into $DIR"
  tar -xf "$tar_file" -C "$DIR" || die "unpacking $tar_file failed"
  list="$DIR/VOCdevkit/${expect%%:*}"
  want=${expect##*:}
  [[ -f "$list" ]] || die "$name unpacked but $list is missing"
  got=$(grep -c . "$list")
  [[ "$got" == "$want" ]] || die "$list lists $got ids, expected $want"
  touch "$done_mark"
  if [[ "${VOC_DELETE_TARS:-0}" == 1 ]]; then rm -f "$tar_file"; fi
done
echo "fetch_voc: VOC2007 trainval (5011) + test (4952) and VOC2012 trainval (11540) in $DIR/VOCdevkit"
