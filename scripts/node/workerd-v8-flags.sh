#!/usr/bin/env bash
# Started by miniflare in place of workerd (MINIFLARE_WORKERD_PATH, see workerd-v8-flags.ts): the binary
# Cap'n Proto config that miniflare writes to stdin gets CTC_WORKERD_V8_FLAGS as its v8Flags, then the real
# workerd (CTC_WORKERD) replaces this shell, so miniflare's signals and pipes reach it directly.
set -euo pipefail
exec "$CTC_WORKERD" "$@" < <(node "$(dirname "$0")/set-v8-flags.mjs" $CTC_WORKERD_V8_FLAGS)
