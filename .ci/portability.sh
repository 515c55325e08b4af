#!/usr/bin/env bash
# Fails when src/ uses a Unix-only or Windows-only API outside a matching `#[cfg(...)]`.
# The release builds for Windows and macOS cannot run on a Linux CI box, so this is the check
# that keeps `cargo build` working there. OS-specific code belongs in src/platform.rs; a
# `cfg(unix)` / `cfg(windows)` (or `target_os`, `target_family`) attribute at most 12 lines
# above the use, in the same file, counts as the guard.
set -euo pipefail
cd "$(dirname "$0")/.."

# Extended regular expressions as POSIX awk reads them (no \b: mawk lacks it).
unix='std::os::unix|os::unix::|tokio::signal::unix|SignalKind::|(^|[^A-Za-z0-9_])libc::|(^|[^A-Za-z0-9_])nix::|PermissionsExt|OpenOptionsExt|FileTypeExt|MetadataExt|(^|[^A-Za-z0-9_])(set_mode|from_mode|is_fifo|is_socket)[(]|"/dev/|"/proc/|"/tmp/'
windows='std::os::windows|os::windows::|tokio::signal::windows|(^|[^A-Za-z0-9_])(windows_sys|winapi)::|"[A-Za-z]:\\\\'

status=0
while IFS= read -r -d '' file; do
  awk -v unix="$unix" -v windows="$windows" -v file="$file" '
    # Comments and doc comments may name any API.
    /^[[:space:]]*\/\// { next }
    /#\[cfg\(/ { cfg_line = NR; cfg = $0 }
    function guarded(family) {
      return cfg_line && NR - cfg_line <= 12 && cfg !~ /not[(]/ &&
        (cfg ~ family || cfg ~ /target_os|target_family|target_vendor/)
    }
    $0 ~ unix && !guarded("unix") {
      printf "%s:%d: Unix-only API without #[cfg(unix)]: %s\n", file, NR, $0; bad = 1
    }
    $0 ~ windows && !guarded("windows") {
      printf "%s:%d: Windows-only API without #[cfg(windows)]: %s\n", file, NR, $0; bad = 1
    }
    END { exit bad }
  ' "$file" || status=1
done < <(find src -name '*.rs' -print0 | sort -z)

if [ "$status" -ne 0 ]; then
  echo "portability: move these into src/platform.rs behind cfg(unix) / cfg(windows)" >&2
else
  echo "portability: no unguarded OS-specific API in src/"
fi
exit "$status"
