#!/usr/bin/env bash
# Build the carbontop image (Containerfile) with Debian's tools, from local files only:
# mmdebstrap makes a bookworm root file system from the Debian mirror apt already uses, buildah
# builds the image from it and the binary. As root (or set up buildah rootless yourself).
#
#   scripts/build-image.sh [--binary PATH] [--tag NAME] [--check]
#
# --binary: the carbontop to put in (default: cargo build --release --locked, then
#           target/release/carbontop); --tag: the image's name (default localhost/carbontop:VERSION);
# --check:  then run the image's carbontop (`--version`, and `report` of a fixture recording)
#           with buildah run, and fail unless both answer.
# Needs: apt-get install mmdebstrap buildah (crun comes with buildah).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
binary="" tag="localhost/carbontop:$version" check=0
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --check) check=1; shift ;;
        *) echo "build-image.sh: unknown argument $1 (--binary PATH, --tag NAME, --check)" >&2; exit 2 ;;
    esac
done
for tool in mmdebstrap buildah; do
    command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing: apt-get install mmdebstrap buildah" >&2; exit 2; }
done
if [ -z "$binary" ]; then
    cargo build --release --locked
    binary=target/release/carbontop
fi

ctx=target/image
mkdir -p "$ctx"
if [ ! -s "$ctx/rootfs.tar" ]; then
    # Essential packages (a shell for maintainer scripts) and ca-certificates; no docs.
    mmdebstrap --quiet --variant=essential --include=ca-certificates \
        --dpkgopt='path-exclude=/usr/share/{doc,man,locale,info}/*' \
        bookworm "$ctx/rootfs.tar.part"
    mv "$ctx/rootfs.tar.part" "$ctx/rootfs.tar"
fi
install -m 0755 "$binary" "$ctx/carbontop"
buildah --storage-driver vfs bud --quiet --isolation chroot -f Containerfile -t "$tag" "$ctx"
echo "built $tag"

if [ "$check" = 1 ]; then
    ctr=$(buildah --storage-driver vfs from --quiet "$tag")
    trap 'buildah --storage-driver vfs rm "$ctr" >/dev/null' EXIT
    buildah --storage-driver vfs copy "$ctr" fixtures/traces/a40x4-cifar100.csv /tmp/run.csv >/dev/null
    run() { buildah --storage-driver vfs run --isolation chroot "$ctr" -- "$@"; }
    run /usr/local/bin/carbontop --version
    run /usr/local/bin/carbontop report /tmp/run.csv | grep -q 'kWh' \
        || { echo "build-image.sh: the image's carbontop report printed no kWh" >&2; exit 1; }
    echo "checked $tag: carbontop --version and report answer inside the image"
fi
