#!/usr/bin/env bash
# build.sh WORKDIR CLANG SYSROOT — builds SQLite's command-line shell (and its
# speedtest1 benchmark) for wasm32-wasi from Debian's source package (bookworm's
# sqlite3), into WORKDIR/sqlite3.wasm and WORKDIR/speedtest1.wasm.
#
# Nothing of SQLite is kept in the repository: the source package is fetched with apt's
# ordinary client into WORKDIR (a private apt state, no system configuration touched),
# the amalgamation is generated with the package's own build (host cc and tclsh), and
# the two C files are compiled with clang and wasi-libc plus compat.h/compat.c here.
# Every step is cached in WORKDIR; a rebuild happens only when this script changes.
# Exit status 77 when the source cannot be had (no tclsh, no package index).
set -euo pipefail
mkdir -p "$1"
work=$(cd "$1" && pwd)
cc=$2
sysroot=$(cd "$3" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cd "$work"
stamp="$work/sqlite3.wasm.stamp"
want=$(cat "$here/build.sh" "$here/compat.h" "$here/compat.c" "$here/include/pwd.h" | sha256sum | cut -d' ' -f1)
if [[ -f sqlite3.wasm && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
command -v tclsh >/dev/null || { echo "build.sh: tclsh is needed to generate SQLite's amalgamation" >&2; exit 77; }

# 1. The source package, through apt with a private state directory.
if ! ls sqlite3_*.orig.tar.* >/dev/null 2>&1; then
  mkdir -p apt/lists/partial apt/cache
  cat >apt/src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
SRC
  apt_opts=(-o "Dir::Etc::sourcelist=$work/apt/src.sources" -o Dir::Etc::sourceparts=-
            -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o APT::Sandbox::User=root -q)
  if ! apt-get "${apt_opts[@]}" update >apt.log 2>&1 || ! apt-get "${apt_opts[@]}" source --download-only sqlite3 >>apt.log 2>&1; then
    echo "build.sh: cannot fetch Debian's sqlite3 source package; see $work/apt.log" >&2
    exit 77
  fi
fi
tarball=$(ls sqlite3_*.orig.tar.* | grep -v www | head -n 1)

# 2. The amalgamation (sqlite3.c, shell.c), by SQLite's own build on the host.
if [[ ! -f amalgamation/sqlite3.c || ! -f amalgamation/shell.c ]]; then
  rm -rf src amalgamation
  mkdir src amalgamation
  tar -xf "$tarball" -C src --strip-components=1
  (cd amalgamation && ../src/configure --disable-tcl >configure.log 2>&1 && make sqlite3.c shell.c >make.log 2>&1)
fi

# 3. The shell for wasm32-wasi: no threads, no extensions, no WAL (it needs shared
# memory), wasi-libc's emulations for mmap, getpid, signals and process clocks.
flags=(--target=wasm32-wasi "--sysroot=$sysroot" -O2 -w
       -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_WAL -DSQLITE_EXTRA_INIT=tb_sqlite_wasi_init
       -DSQLITE_DEFAULT_MEMSTATUS=0 -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_SIGNAL
       -D_WASI_EMULATED_PROCESS_CLOCKS -include "$here/compat.h" -I "$here/include" -I amalgamation)
"$cc" "${flags[@]}" -c amalgamation/sqlite3.c -o sqlite3.o
"$cc" "${flags[@]}" -c amalgamation/shell.c -o shell.o
"$cc" "${flags[@]}" -c "$here/compat.c" -o compat.o
"$cc" --target=wasm32-wasi "--sysroot=$sysroot" sqlite3.o shell.o compat.o -lwasi-emulated-mman \
  -lwasi-emulated-getpid -lwasi-emulated-signal -lwasi-emulated-process-clocks -o sqlite3.wasm.tmp
# SQLite's own benchmark program, a second real workload on the same library.
"$cc" "${flags[@]}" -c src/test/speedtest1.c -o speedtest1.o
"$cc" --target=wasm32-wasi "--sysroot=$sysroot" speedtest1.o sqlite3.o compat.o -lwasi-emulated-mman \
  -lwasi-emulated-getpid -lwasi-emulated-signal -lwasi-emulated-process-clocks -o speedtest1.wasm
mv sqlite3.wasm.tmp sqlite3.wasm
echo "$want" >"$stamp"
