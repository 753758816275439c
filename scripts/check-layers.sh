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
[ "$fail" = 0 ] && echo "check-layers: ok"
exit "$fail"
