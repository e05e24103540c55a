#!/bin/sh
# Build the browser code Joliba serves itself (sites may have no internet, so no CDN).
# npm ci installs exactly package-lock.json; third-party dist files are copied, and the viewer's
# own ES modules (platform/viewer/js/) are bundled and minified by esbuild, into gitignored static
# folders. Run before collectstatic (make static does); safe to run again.
set -eu
cd "$(dirname "$0")/.."
VENDOR=platform/uploads/static/uploads/vendor
VIEWER=platform/viewer/static/viewer/viewer.min.js
command -v npm >/dev/null || { echo "build_static: npm is required (apt install npm)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
mkdir -p "$VENDOR"
# Drop the sourceMappingURL line: the map is not shipped, and ManifestStaticFilesStorage
# refuses to collect a file that references a missing one.
sed '/^\/\/# sourceMappingURL=/d' node_modules/tus-js-client/dist/tus.min.js > "$VENDOR/tus.min.js.tmp"
mv "$VENDOR/tus.min.js.tmp" "$VENDOR/tus.min.js"
cp node_modules/tus-js-client/LICENSE "$VENDOR/tus-js-client.LICENSE.txt" 2>/dev/null || true
echo "build_static: $VENDOR/tus.min.js ($(wc -c < "$VENDOR/tus.min.js") bytes)"
# The viewer: one IIFE file for a plain deferred <script>, no source map (see above).
node_modules/.bin/esbuild platform/viewer/js/main.js --bundle --minify --format=iife \
  --target=chrome100,firefox100,safari15.4 --legal-comments=none --log-level=warning --outfile="$VIEWER"
echo "build_static: $VIEWER ($(wc -c < "$VIEWER") bytes, $(gzip -9c "$VIEWER" | wc -c) gzip)"
