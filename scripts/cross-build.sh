#!/usr/bin/env bash
# Cross-build edgemq for the appliance targets on a Debian 12 (bookworm) x86_64 host
# where rustup cannot download targets, then test each binary under qemu-user: a round trip
# (tests/packaging/cross_smoke.sh) and the bridge's store-and-forward to a TLS Mosquitto through
# an outage, a clean stop and a SIGKILL (tests/packaging/cross_bridge.sh).
#
#   scripts/cross-build.sh                       # all four targets
#   scripts/cross-build.sh armv7-unknown-linux-musleabihf   # one (or several) targets
#   SETUP_ONLY=1 scripts/cross-build.sh ...      # install toolchains only
#   NO_SMOKE=1   scripts/cross-build.sh ...      # build, no qemu tests
#   STD_FEATURES="backtrace panic-unwind" ...    # std features of -Zbuild-std (every target);
#                 default optimize_for_size: no backtrace symbolizer (gimli, addr2line, demangler:
#                 ~65 KiB on armv7), smaller std algorithms; panics still print their message
#
# How (why each step exists is noted where it happens):
#   - compiler: Debian's rustc-web (/usr/bin/rustc, sysroot /usr), not rustup's, because
#     its source package (rust-web-src) matches it exactly for -Zbuild-std;
#   - glibc target (armv7-unknown-linux-gnueabihf, the armhf .deb): glibc from Debian's armhf cross
#     packages; its std is built with -Zbuild-std like the others (Debian's prebuilt one is
#     larger: opt-level 3, backtrace symbolizer);
#   - musl targets (static, OpenWRT and Armbian alike): std built with -Zbuild-std, musl's
#     crt/libc from Debian's musl-dev .deb; mipsel needs a soft-float musl built from source
#     (Debian's mipsel musl is hard-float, OpenWRT's MT7621 ABI is soft-float);
#   - cross gcc from Debian as linker and C compiler (ring's C/asm code).
# Output: target/cross/<triple>/release/edgemq, and one summary line per target
# (build seconds, stripped size, smoke result) appended to target/cross/summary.txt.
# Needs root (apt-get, /usr/lib/rustlib). Scratch: $XB (default /tmp/edgemq-xbuild).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
XB=${XB:-${TMPDIR:-/tmp}/edgemq-xbuild}
RUSTLIB=/usr/lib/rustlib           # sysroot of /usr/bin/rustc is /usr
GCCV=12                            # bookworm's cross gcc
TARGET_DIR=${TARGET_DIR:-$ROOT/target/cross}
# size budget of the stripped full-featured binary per target (issue 5); reported, not enforced
SIZE_BUDGET=${SIZE_BUDGET:-$((2 * 1024 * 1024))}
ALL_TARGETS="armv7-unknown-linux-musleabihf mipsel-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf"
TARGETS=${*:-$ALL_TARGETS}
mkdir -p "$XB/dl" "$TARGET_DIR"

log() { printf '[cross-build] %s\n' "$*" >&2; }

# The Debian mirror apt already uses (the .debs for foreign architectures come from its pool:
# enabling armhf as a dpkg architecture made `apt-get update` fail on this kind of mirror).
apt_mirror() {
  local u
  u=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -1)
  [ -n "$u" ] || u=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)
  echo "${u%/debian}"
}
MIRROR=${MIRROR:-$(apt_mirror)}

# gcc triplet, qemu binary, qemu -L sysroot (glibc only) for a Rust target
gcc_of() { case $1 in armv7-*) echo arm-linux-gnueabihf ;; aarch64-*) echo aarch64-linux-gnu ;; mipsel-*) echo mipsel-linux-gnu ;; *) return 1 ;; esac; }
qemu_of() { case $1 in armv7-*) echo qemu-arm-static ;; aarch64-*) echo qemu-aarch64-static ;; mipsel-*) echo qemu-mipsel-static ;; esac; }

install_host_packages() {
  local pkgs="rustc-web cargo-web rust-web-src gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu
    gcc-mipsel-linux-gnu libc6-dev-armhf-cross libc6-dev-arm64-cross libc6-dev-mipsel-cross
    qemu-user-static curl make file mosquitto mosquitto-clients openssl"
  # shellcheck disable=SC2086
  if dpkg-query -W -f='${Status}\n' $pkgs 2>/dev/null | grep -vq 'install ok installed' ||
     [ "$(dpkg-query -W -f='${Status}\n' $pkgs 2>/dev/null | wc -l)" -lt "$(echo $pkgs | wc -w)" ]; then
    log "installing host packages"
    apt-get update -q || log "apt-get update reported errors; trying the install anyway"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 $pkgs
  fi
  test -d "$RUSTLIB/src/rust/library/std"
}

fetch_deb() {  # fetch_deb <srcpkg> <binpkg> <version> <arch>  -> path of the .deb
  local src=$1 pkg=$2 ver=$3 arch=$4 f="$XB/dl/${2}_${3}_${4}.deb" d=${1:0:1}
  if [ ! -s "$f" ]; then
    curl -fsSL -o "$f" "$MIRROR/debian-security/pool/updates/main/$d/$src/${pkg}_${ver}_${arch}.deb" 2>/dev/null ||
    curl -fsSL -o "$f" "$MIRROR/debian/pool/main/$d/$src/${pkg}_${ver}_${arch}.deb" ||
    { rm -f "$f"; log "cannot download ${pkg}_${ver}_${arch}.deb"; return 1; }
  fi
  echo "$f"
}

# glibc: Debian's prebuilt std of the same rustc-web version.
setup_gnu() {
  local T=$1 arch=$2 RV deb
  [ -f "$RUSTLIB/$T/.edgemq-setup" ] && return
  RV=$(dpkg-query -W -f='${Version}' rustc-web)
  deb=$(fetch_deb rustc-web libstd-rust-web-dev "$RV" "$arch")
  rm -rf "$XB/x-$arch" && mkdir -p "$XB/x-$arch" && dpkg-deb -x "$deb" "$XB/x-$arch"
  rm -rf "${RUSTLIB:?}/$T" && cp -a "$XB/x-$arch/usr/lib/rustlib/$T" "$RUSTLIB/$T"
  touch "$RUSTLIB/$T/.edgemq-setup"
}

# Debian's glibc-built libgcc_eh (the unwinder rustc links as libunwind.a for musl) calls
# glibc's _dl_find_object, which musl lacks; and it reaches pthread functions through weak
# references that a static link does not pull in (a call to address 0 on mipsel).
write_dlfo_shim() {
  cat > "$XB/dlfo.c" <<'C'
#include <link.h>
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>
struct dl_find_object {               /* glibc 2.35 layout */
  unsigned long long dlfo_flags;
  void *dlfo_map_start, *dlfo_map_end, *dlfo_link_map, *dlfo_eh_frame;
  unsigned long long __dlfo_reserved[7];
};
struct dlfo_cb { uintptr_t pc; struct dl_find_object *out; int found; };
static int dlfo_cb(struct dl_phdr_info *info, size_t size, void *data) {
  struct dlfo_cb *d = data; uintptr_t lo = UINTPTR_MAX, hi = 0; void *eh = NULL; int hit = 0;
  (void)size;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    uintptr_t s = info->dlpi_addr + p->p_vaddr;
    if (p->p_type == PT_LOAD) {
      uintptr_t e = s + p->p_memsz;
      if (d->pc >= s && d->pc < e) hit = 1;
      if (s < lo) lo = s;
      if (e > hi) hi = e;
    } else if (p->p_type == PT_GNU_EH_FRAME) eh = (void *)s;
  }
  if (!hit) return 0;
  d->out->dlfo_flags = 0; d->out->dlfo_map_start = (void *)lo; d->out->dlfo_map_end = (void *)hi;
  d->out->dlfo_link_map = NULL; d->out->dlfo_eh_frame = eh; d->found = 1;
  return 1;
}
int _dl_find_object(void *pc, struct dl_find_object *out) {
  struct dlfo_cb d = { (uintptr_t)pc, out, 0 };
  dl_iterate_phdr(dlfo_cb, &d);
  return d.found ? 0 : -1;
}
__attribute__((used)) void *const __edgemq_force_pthread[] = {
  (void *)pthread_once, (void *)pthread_mutex_lock, (void *)pthread_mutex_unlock,
  (void *)pthread_key_create, (void *)pthread_getspecific, (void *)pthread_setspecific };
C
}

build_musl_mipsel_softfloat() {  # <prefix>
  local prefix=$1 MV up
  [ -f "$prefix/lib/libc.a" ] && return
  MV=$(apt-cache show --no-all-versions musl-dev | sed -n 's/^Version: //p' | head -1)
  up=${MV%-*}
  [ -s "$XB/dl/musl_$up.orig.tar.gz" ] ||
    curl -fsSL -o "$XB/dl/musl_$up.orig.tar.gz" "$MIRROR/debian/pool/main/m/musl/musl_$up.orig.tar.gz"
  rm -rf "$XB/musl-$up" && tar -C "$XB" -xzf "$XB/dl/musl_$up.orig.tar.gz"
  ( cd "$XB/musl-$up" &&
    ./configure --target=mipsel-linux-gnu --prefix="$prefix" --disable-shared \
                CC=mipsel-linux-gnu-gcc CFLAGS="-msoft-float -Os" >/dev/null &&
    make -j"$(nproc)" >/dev/null && make install >/dev/null )
}

# musl: rustc links these targets "self-contained" from $RUSTLIB/<T>/lib/self-contained
# (crt objects, libc.a, libunwind.a), which is what rustup's rust-std would ship.
setup_musl() {  # <rust target> <debian arch|sf> <musl triplet>
  local T=$1 A=$2 M=$3 G src inc deb MV
  [ -f "$RUSTLIB/$T/.edgemq-setup" ] && return
  G=$(gcc_of "$T")
  local SC=$RUSTLIB/$T/lib/self-contained GL=/usr/lib/gcc-cross/$G/$GCCV
  if [ "$A" = sf ]; then
    build_musl_mipsel_softfloat "$XB/musl-$M-sf"
    src=$XB/musl-$M-sf/lib inc=$XB/musl-$M-sf/include
  else
    MV=$(apt-cache show --no-all-versions musl-dev | sed -n 's/^Version: //p' | head -1)
    deb=$(fetch_deb musl musl-dev "$MV" "$A")
    rm -rf "$XB/musl-$A" && mkdir -p "$XB/musl-$A" && dpkg-deb -x "$deb" "$XB/musl-$A"
    src=$XB/musl-$A/usr/lib/$M inc=$XB/musl-$A/usr/include/$M
  fi
  rm -rf "${RUSTLIB:?}/$T" && mkdir -p "$SC" "$RUSTLIB/$T/include"
  cp "$src"/{crt1.o,crti.o,crtn.o,rcrt1.o,Scrt1.o} "$src"/lib{c,m,dl,pthread,rt,util,resolv}.a "$SC/"
  cp -a "$inc/." "$RUSTLIB/$T/include/"
  # crtbegin.o, not crtbeginT.o: crtbeginT registers .eh_frame itself, which made
  # backtraces crash on aarch64; crtbegin.o relies on PT_GNU_EH_FRAME.
  cp "$GL/crtbegin.o" "$GL/crtend.o" "$GL/crtbeginS.o" "$GL/crtendS.o" "$SC/"
  cp "$GL/libgcc_eh.a" "$SC/libunwind.a"
  local fl=""; [ "$A" = sf ] && fl=-msoft-float
  write_dlfo_shim
  "$G-gcc" -O2 -fPIC $fl -nostdinc -isystem "$RUSTLIB/$T/include" -isystem "$GL/include" \
           -c "$XB/dlfo.c" -o "$XB/dlfo-$T.o"
  "$G-ar" rcs "$SC/libunwind.a" "$XB/dlfo-$T.o"
  touch "$RUSTLIB/$T/.edgemq-setup"
}

setup_target() {
  case $1 in
    armv7-unknown-linux-gnueabihf)  setup_gnu "$1" armhf ;;
    armv7-unknown-linux-musleabihf) setup_musl "$1" armhf arm-linux-musleabihf ;;
    aarch64-unknown-linux-musl)     setup_musl "$1" arm64 aarch64-linux-musl ;;
    mipsel-unknown-linux-musl)      setup_musl "$1" sf mipsel-linux-musl ;;
    *) log "unsupported target $1 (supported: $ALL_TARGETS)"; return 1 ;;
  esac
}

# Cargo config for the cross targets: linkers, C compilers for ring, qemu runners.
write_cargo_config() {
  local f=$XB/cargo-cross.toml T G U cfl
  {
    for T in $ALL_TARGETS; do
      G=$(gcc_of "$T"); U=${T//-/_}
      echo "[target.$T]"
      echo "linker = \"$G-gcc\""
      case $T in
        *gnueabihf) echo "runner = \"$(qemu_of "$T") -L /usr/$G\"" ;;
        *) echo "runner = \"$(qemu_of "$T")\"" ;;
      esac
      # No unwind tables: the release profile aborts on panic, so nothing unwinds, and
      # .eh_frame/.ARM.exidx were up to 390 KiB of the binary (aarch64). The cost: no
      # backtrace on a panic, which a stripped binary could not symbolize anyway.
      # Tier-3 MIPS musl defaults to dynamic linking; OpenWRT wants one static file.
      rf='"-C", "force-unwind-tables=no"'
      [ "$T" = mipsel-unknown-linux-musl ] && rf="$rf, \"-C\", \"target-feature=+crt-static\""
      # The musl binaries are static, not static-pie (no ASLR to keep), so their code need not
      # be position-independent: on MIPS, PIC calls and globals go through the GOT with a $gp
      # set-up in every function.
      case $T in *musl*) rf="$rf, \"-C\", \"relocation-model=static\"" ;; esac
      # ld pads the file so the writable segment's offset matches its address modulo the
      # largest page size the architecture allows: 64 KiB on MIPS, so up to 64 KiB of zeros
      # (24 KiB in this binary). 32-bit MIPS router kernels (ramips, ath79) use 4 KiB pages.
      # (ld already uses 4 KiB for 32-bit ARM; aarch64 keeps its default: 16 and 64 KiB
      # page kernels exist there.)
      case $T in mipsel-*) rf="$rf, \"-C\", \"link-arg=-Wl,-z,max-page-size=4096\"" ;; esac
      echo "rustflags = [$rf]"
      echo
    done
    echo "[env]"
    for T in $ALL_TARGETS; do
      G=$(gcc_of "$T"); U=${T//-/_}
      echo "CC_$U = \"$G-gcc\""
      echo "AR_$U = \"$G-ar\""
      case $T in
        *musl*)
          cfl="-nostdinc -isystem $RUSTLIB/$T/include -isystem /usr/lib/gcc-cross/$G/$GCCV/include"
          [ "$T" = mipsel-unknown-linux-musl ] && cfl="-msoft-float $cfl"
          echo "CFLAGS_$U = \"$cfl\"" ;;
      esac
    done
  } > "$f"
  echo "$f"
}

build_target() {  # <target> -> prints the binary path
  local T=$1 cfg=$2 extra=()
  # every target: std built for size and without the backtrace symbolizer (see STD_FEATURES)
  extra=(-Zbuild-std=std,panic_abort "-Zbuild-std-features=${STD_FEATURES-optimize_for_size}")
  ( cd "$ROOT" &&
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
      /usr/bin/cargo --config "$cfg" build --release --locked --target "$T" \
      --target-dir "$TARGET_DIR" --bin edgemq "${extra[@]}" >&2 )
  echo "$TARGET_DIR/$T/release/edgemq"
}

main() {
  install_host_packages
  local T cfg bin s e size smoke
  for T in $TARGETS; do setup_target "$T"; done
  cfg=$(write_cargo_config)
  [ "${SETUP_ONLY:-0}" = 1 ] && { log "setup done ($cfg)"; return 0; }
  local rc=0
  for T in $TARGETS; do
    log "building $T"
    s=$(date +%s)
    bin=$(build_target "$T" "$cfg")
    e=$(date +%s)
    "$(gcc_of "$T")-strip" -o "$bin.stripped" "$bin"
    size=$(stat -c %s "$bin.stripped")
    smoke=skipped
    if [ "${NO_SMOKE:-0}" != 1 ]; then
      # the round trip, then the bridge's store-and-forward through an outage and restarts
      if "$ROOT/tests/packaging/cross_smoke.sh" "$T" "$bin" &&
        "$ROOT/tests/packaging/cross_bridge.sh" "$T" "$bin"; then smoke=passed; else smoke=FAILED; rc=1; fi
    fi
    local budget=ok; [ "$size" -le "$SIZE_BUDGET" ] || budget="OVER the $((SIZE_BUDGET / 1024)) KiB budget"
    printf '%-32s build %5ss  stripped %9s bytes (%s KiB, %s)  smoke %s\n' \
      "$T" $((e - s)) "$size" $((size / 1024)) "$budget" "$smoke" | tee -a "$TARGET_DIR/summary.txt"
    file "$bin.stripped" >&2
  done
  return $rc
}

main
