#!/usr/bin/env bash
# Install DynamoDB Local (AWS's emulator) from the npm registry: the package
# amplify-dynamodb-simulator ships DynamoDBLocal.jar and DynamoDBLocal_lib
# (under node_modules/amplify-dynamodb-simulator/emulator/). Java 17+ runs it;
# tests/support/dynamodb_local.py starts it.
#
# Installs into $PYCONVEX_CACHE/dynamodb-local (default <repo>/.cache).
# Idempotent: does nothing when the jar is already there.
set -euo pipefail

VERSION=2.9.30 # `npm view amplify-dynamodb-simulator version`; ships DynamoDB Local 1.25.1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PYCONVEX_CACHE:-$ROOT/.cache}"
DEST="$CACHE/dynamodb-local"
PKG="$DEST/node_modules/amplify-dynamodb-simulator"

have_jar() {
  [ -f "$PKG/emulator/DynamoDBLocal.jar" ] || { [ -d "$PKG" ] && find "$PKG" -name DynamoDBLocal.jar | grep -q .; }
}

if have_jar; then
  echo "DynamoDB Local already installed in $PKG"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is needed to install DynamoDB Local (Node.js 18+): install it, or run the tests with SKIP_DYNAMODB_LOCAL=1" >&2
  exit 1
fi
command -v java >/dev/null 2>&1 || echo "warning: Java 17+ is needed to run DynamoDB Local" >&2

mkdir -p "$DEST" "$PKG"
# `npm pack` fetches the package alone (65 MB); `npm install` would also pull
# its ~280 JavaScript dependencies (350 MB) that running the jar never uses.
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "+ npm pack amplify-dynamodb-simulator@$VERSION (into $PKG)"
(cd "$TMP" && npm pack --silent "amplify-dynamodb-simulator@$VERSION" >/dev/null)
tar -xzf "$TMP"/amplify-dynamodb-simulator-*.tgz -C "$PKG" --strip-components=1

if ! have_jar; then
  echo "DynamoDBLocal.jar not found in $PKG after installing amplify-dynamodb-simulator@$VERSION" >&2
  exit 1
fi
echo "DynamoDB Local installed in $PKG"
