#!/usr/bin/env bash
# Re-vendors the API reference UI that `GET /docs` serves from the binary: swagger-ui-dist at the
# pinned version, from the npm registry (`npm pack` checks the tarball against the registry's
# integrity hash), into ca/src/http/docs_ui/. Nothing is loaded from a CDN at run time.
#   scripts/vendor_docs_ui.sh          # the pinned version
# To move to another version, change `version` here and DOCS_UI_VERSION in ca/src/http/docs.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
version=5.36.0
integrity='sha512-Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A=='
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null)
tarball="$work/swagger-ui-dist-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$got" = "$integrity" ] || { echo "integrity mismatch: $got" >&2; exit 1; }
tar xzf "$tarball" -C "$work"
dest=ca/src/http/docs_ui
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
  cp "$work/package/$f" "$dest/$f"
done
echo "swagger-ui-dist $version" > "$dest/VERSION"
echo "vendored swagger-ui-dist $version into $dest" >&2
