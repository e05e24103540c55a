#!/bin/sh
# Build the third-party browser code Joliba serves itself (sites may have no internet, so no CDN).
# npm ci installs exactly package-lock.json; the dist file is copied into a gitignored static folder.
# Run before collectstatic (make static does); safe to run again.
set -eu
cd "$(dirname "$0")/.."
VENDOR=platform/uploads/static/uploads/vendor
command -v npm >/dev/null || { echo "build_static: npm is required (apt install npm)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
mkdir -p "$VENDOR"
# Drop the sourceMappingURL line: the map is not shipped, and ManifestStaticFilesStorage
# refuses to collect a file that references a missing one.
sed '/^\/\/# sourceMappingURL=/d' node_modules/tus-js-client/dist/tus.min.js > "$VENDOR/tus.min.js.tmp"
mv "$VENDOR/tus.min.js.tmp" "$VENDOR/tus.min.js"
cp node_modules/tus-js-client/LICENSE "$VENDOR/tus-js-client.LICENSE.txt" 2>/dev/null || true
echo "build_static: $VENDOR/tus.min.js ($(wc -c < "$VENDOR/tus.min.js") bytes)"
