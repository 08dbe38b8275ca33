# Sourced by ./run_tests and ./run_experiment: install what the build needs
# (Debian 12 packages), configure build dir $CBNN_BUILD_DIR with meson if
# needed, compile. Every step says what it does; nothing is installed by hand.

CBNN_PACKAGES=(meson ninja-build pkg-config gcc g++ libhdf5-dev hdf5-tools python3-h5py libyaml-dev
               libopenblas-openmp-dev zlib1g-dev libbenchmark-dev dataset-fashion-mnist gnuplot-nox
               libjpeg62-turbo-dev libxml2-dev strace libopenmpi-dev openmpi-bin libgsl-dev libdnnl-dev)

cbnn_missing_packages() {
    local p missing=()
    for p in "${CBNN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    echo "${missing[@]}"
}

cbnn_install_deps() {
    local missing
    missing=$(cbnn_missing_packages)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "cyclebnn: missing Debian packages: $missing" >&2
        echo "cyclebnn: install them with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y $missing" >&2
        return 1
    fi
    echo "cyclebnn: installing $missing" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
}

# cbnn_build BUILD_DIR [meson setup options...]
cbnn_build() {
    local dir=$1
    shift
    cbnn_install_deps || return 1
    if [ ! -f "$dir/build.ninja" ]; then
        echo "cyclebnn: configuring $dir" >&2
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log" >&2; return 1; }
        rm -f "$dir.setup.log"
    fi
    ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { cat "$dir.ninja.log" >&2; return 1; }
    rm -f "$dir.ninja.log"
}
