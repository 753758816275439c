#!/usr/bin/env bash
# The layering Cargo must hold (docs/architecture.md#crates): the core links no SDK,
# database, HTTP or mail crate; the Lambda functions link neither SQLite nor an SMTP library;
# the operator CLI does not link the sandbox.
set -euo pipefail
cargo=${CARGO:-cargo}
fail=0
check() { # package, forbidden-crate regex, what
    local found
    found=$($cargo tree --locked -p "$1" -e normal --prefix none --format '{p}' \
        | awk '{print $1}' | sort -u | grep -E "^($2)\$" || true)
    if [ -n "$found" ]; then
        echo "check-layers: $1 must not depend on $3, but links: $(echo $found)" >&2
        fail=1
    fi
}
check classy-sync-core 'aws-.*|aws-config|rusqlite|reqwest|lettre|axum|hyper' \
    'an AWS SDK, aws-config, rusqlite, reqwest, lettre, axum or hyper'
check classy-sync-functions 'rusqlite|lettre|classy-sync-local|classy-sandbox' \
    'SQLite, lettre, the local adapters or the sandbox'
check classy-sync-cli 'classy-sandbox' 'the sandbox'
# The AWS SDK's legacy HTTP client (hyper 0.14, rustls 0.21) brings h2 0.3 and rustls-webpki
# 0.101, which carry advisories (RUSTSEC-2026-0258, -0098, -0099, -0104): the SDK crates are
# declared without default features (Cargo.toml); no crate of the workspace may bring it back.
legacy=$($cargo tree --locked --workspace -e normal,build,dev --prefix none --format '{p}' \
    | awk '{print $1" "$2}' | sort -u \
    | grep -E '^(hyper v0\.14|h2 v0\.3|rustls v0\.(2[01]|1[0-9])|rustls-webpki v0\.10[01])\.' || true)
if [ -n "$legacy" ]; then
    echo "check-layers: the workspace links the legacy HTTP/TLS stack: $(echo $legacy)" >&2
    echo "check-layers: declare aws-* crates with default-features = false (see Cargo.toml)" >&2
    fail=1
fi
[ "$fail" = 0 ] && echo "check-layers: ok"
exit "$fail"
