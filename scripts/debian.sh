# Sourced by the test scripts: installs Debian packages a test needs.
#
#   debian_install WHO PACKAGE...
#
# As root: apt-get installs the packages (quietly, without recommends).
# Otherwise: says what to run, as WHO, and exits 1.
debian_install() {
    local who=$1
    shift
    if [ "$(id -u)" != 0 ]; then
        echo "$who: $* is not installed; run: sudo apt-get install $*" >&2
        exit 1
    fi
    echo "installing $* from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "$@" >&2
}
