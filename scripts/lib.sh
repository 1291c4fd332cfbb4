# Shared by the setup scripts (sourced, not run). The caller defines log().

debian_mirror() {
    # The mirror this machine already uses, so no host name is written anywhere.
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { log "cannot find the Debian mirror in /etc/apt sources"; exit 1; }
    printf '%s\n' "$uri"
}

apt_updated=""
apt_install() {
    # Installs the packages that are missing; the first install of a run refreshes the lists.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
    log "installing ${missing[*]}"
    # policy-rc.d: packages' init scripts must not start daemons; the scripts start what they need.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || status=$?
    rm -f /usr/sbin/policy-rc.d
    return "$status"
}

build_debian_image() {
    # build_debian_image NAME PACKAGES: a cached Debian bookworm minbase image
    # $IMAGE_DIR/NAME.sif with the comma-separated PACKAGES, built once.
    local image="$IMAGE_DIR/$1.sif" packages=$2
    [ -s "$image" ] && return 0
    mkdir -p "$IMAGE_DIR"
    local rootfs
    rootfs=$(mktemp -d "$IMAGE_DIR/rootfs.XXXXXX")
    log "building the $1 image (debootstrap, about a minute)"
    debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$(debian_mirror)" >/dev/null
    apptainer build --force "$image.tmp" "$rootfs" >/dev/null
    mv "$image.tmp" "$image"
    rm -rf "$rootfs"
    chmod 755 "$CACHE_DIR" "$IMAGE_DIR"; chmod 644 "$image"
}
