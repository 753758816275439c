#!/usr/bin/env bash
# Build times of a checkout: a clean `cargo build --release --workspace`, then the
# incremental rebuild after touching one domain file (the file every layer above depends on).
# Usage: scripts/build_times.sh [REF...]   (default: HEAD). Each ref is checked out in a
# temporary worktree with its own target directory, so the working tree is not touched.
# Runs one build at a time; keep the machine otherwise idle while it measures.
set -euo pipefail
cargo=${CARGO:-cargo}
repo=$(git rev-parse --show-toplevel)
refs=("$@")
[ ${#refs[@]} -eq 0 ] && refs=(HEAD)
# The domain's entity module, wherever the ref keeps the domain.
domain_file() {
    for f in shared/core/src/domain/entity.rs shared/src/domain/entity.rs; do
        [ -f "$1/$f" ] && { echo "$1/$f"; return; }
    done
    echo "build_times: no domain/entity.rs in $1" >&2
    exit 1
}
seconds() { # command... -> wall seconds on stdout, build output on stderr
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >&2
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
for ref in "${refs[@]}"; do
    sha=$(git -C "$repo" rev-parse --short "$ref")
    dir=$(mktemp -d "/tmp/build-times-$sha.XXXX")
    git -C "$repo" worktree add --detach "$dir/src" "$sha" >/dev/null 2>&1
    export CARGO_TARGET_DIR="$dir/target"
    (cd "$dir/src" && $cargo fetch --locked >/dev/null 2>&1)
    clean=$(cd "$dir/src" && seconds $cargo build --release --workspace --locked -q)
    touch "$(domain_file "$dir/src")"
    incr=$(cd "$dir/src" && seconds $cargo build --release --workspace --locked -q)
    crates=$(cd "$dir/src" && $cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["packages"]))')
    printf '%s\t%s workspace crates\tclean release build %.0f s\tafter touching domain/entity.rs %.0f s\n' \
        "$sha" "$crates" "$clean" "$incr"
    git -C "$repo" worktree remove --force "$dir/src"
    rm -rf "$dir"
done
