#!/usr/bin/env bash
# Builds the npm package `sealpost` from the crate sealpost-wasm and tests
# it as a user would: wasm32 release build (profile release-wasm),
# wasm-bindgen-cli (the version of wasm-bindgen in Cargo.lock), wasm-opt
# -Oz (npm's binaryen), a size budget, `npm pack`, the tarball installed
# into a scratch project, then the flows under Node's test runner, the
# TypeScript declarations checked with tsc, and the same flows in headless
# Chromium (Debian's package, driven by playwright-core), and the browser
# chat of examples/web end to end through a relay process. Installs what it
# needs when it is missing; everything it makes goes under the cargo
# target directory.
set -euo pipefail
cd "$(dirname "$0")/../.."

start=$SECONDS
step() { printf '\n==> wasm [%ss]: %s\n' "$((SECONDS - start))" "$*"; }

# Size budget of the optimized module with the default features: issue
# 16's goal, under 350 KiB raw and 150 KiB gzip -9. The module is within it
# (329 KiB and 144 KiB when this was written; what makes it up is in
# docs/PERFORMANCE.md), so anything that grows it past the goal fails here.
budget_raw=$((350 * 1024))
budget_gzip=$((150 * 1024))

target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
work="$target/wasm"
pkg="$work/pkg"
scratch="$work/scratch"
mkdir -p "$work"

step "tools: wasm32 target, wasm-bindgen-cli at the Cargo.lock version, Debian chromium, npm packages"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
test -n "$wb_version"
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $wb_version" ]; then
    # Not --locked: the CLI's own lock file pins a since-yanked webpki-roots.
    cargo install wasm-bindgen-cli --version "$wb_version"
fi
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
mkdir -p "$scratch"
cat >"$scratch/package.json" <<'JSON'
{ "name": "sealpost-scratch", "private": true, "type": "module",
  "devDependencies": { "binaryen": "132.0.0", "playwright-core": "1.65.1", "typescript": "5.9.3" } }
JSON
if ! (cd "$scratch" && node -e 'for (const p of ["binaryen", "playwright-core", "typescript"]) require.resolve(p + "/package.json")' 2>/dev/null); then
    (cd "$scratch" && npm install --silent --no-audit --no-fund)
fi

step "build sealpost-wasm for wasm32-unknown-unknown (profile release-wasm, nightly: std rebuilt for size)"
# Size over speed, measured in docs/PERFORMANCE.md: the standard library
# rebuilt with the module (`-Zbuild-std`, `optimize_for_size`) and panics
# as a bare trap (`-Cpanic=immediate-abort`; with `panic = "abort"` they
# already were one, now without the formatting machinery behind the
# message), and the compact software AES and SHA-2 of the RustCrypto
# crates. Same bytes out; the binding reports every failure as a typed
# error before anything could panic. Only this build uses these flags.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component list --toolchain nightly --installed | grep -q '^rust-src' || rustup component add rust-src --toolchain nightly
RUSTFLAGS='-Zunstable-options -Cpanic=immediate-abort --cfg aes_backend_soft="compact" --cfg sha2_backend_soft="compact"' \
    cargo +nightly build -p sealpost-wasm --lib --target wasm32-unknown-unknown --profile release-wasm \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
raw_wasm="$target/wasm32-unknown-unknown/release-wasm/sealpost_wasm.wasm"

step "wasm-bindgen $wb_version (ESM for browsers and bundlers; node.js loads the same module synchronously)"
rm -rf "$pkg"
wasm-bindgen --target web --weak-refs --out-dir "$pkg" --out-name sealpost_wasm "$raw_wasm"
# The unoptimized module keeps its names, for size analysis.
cp "$pkg/sealpost_wasm_bg.wasm" "$work/sealpost_wasm_bg.names.wasm"

step "wasm-opt -Oz (npm binaryen $(cd "$scratch" && npx --no-install wasm-opt --version))"
(cd "$scratch" && npx --no-install wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$pkg/sealpost_wasm_bg.wasm" -o "$pkg/sealpost_wasm_bg.opt.wasm")
mv "$pkg/sealpost_wasm_bg.opt.wasm" "$pkg/sealpost_wasm_bg.wasm"

step "size of the optimized module (budget: $((budget_raw / 1024)) KiB raw, $((budget_gzip / 1024)) KiB gzip -9)"
raw=$(stat -c %s "$pkg/sealpost_wasm_bg.wasm")
gz=$(gzip -9 -c "$pkg/sealpost_wasm_bg.wasm" | wc -c)
unopt=$(stat -c %s "$work/sealpost_wasm_bg.names.wasm")
printf 'sealpost_wasm_bg.wasm: %d bytes (%d KiB) raw, %d bytes (%d KiB) gzip; before wasm-opt %d KiB\n' \
    "$raw" "$((raw / 1024))" "$gz" "$((gz / 1024))" "$((unopt / 1024))"
if [ "$raw" -gt "$budget_raw" ] || [ "$gz" -gt "$budget_gzip" ]; then
    echo "the module is over its size budget" >&2
    exit 1
fi
python3 bindings/wasm/size-report.py "$work/sealpost_wasm_bg.names.wasm" 12

step "npm pack"
cp bindings/wasm/package.json bindings/wasm/README.md bindings/wasm/js/*.js bindings/wasm/js/*.d.ts "$pkg/"
rm -f "$pkg/.gitignore"
tarball=$(cd "$pkg" && npm pack --silent --pack-destination "$work")
tarball="$work/$tarball"
tar -tzf "$tarball" | sort | sed 's/^/  /'

step "install the tarball into the scratch project, as a user would"
cp bindings/wasm/tests/*.js bindings/wasm/tests/*.html bindings/wasm/tests/*.mjs bindings/wasm/tests/*.ts "$scratch/"
(cd "$scratch" && npm install --silent --no-audit --no-fund --no-save "$tarball")

step "the README's browser snippet is code the flows run"
python3 - <<'PY'
import re
readme = open("README.md").read().split("## In the browser", 1)[1]
block = re.search(r"```js\n(.*?)```", readme, re.S).group(1)
flows = open("bindings/wasm/tests/flows.js").read()
snippet = flows.split("// --- snippet: README", 1)[1].split("// --- end snippet", 1)[0]
lines = [l.strip() for l in block.splitlines() if l.strip() and not l.startswith(("import ", "await "))]
missing = [l for l in lines if l not in snippet]
assert len(lines) >= 5 and not missing, f"README lines not in the tested snippet: {missing}"
print(f"README snippet: {len(lines)} lines, all in tests/flows.js")
PY

step "node --test: the flows against the installed package"
(cd "$scratch" && node --test --test-reporter=spec node.test.js)

step "TypeScript: a strict consumer compiles; every export is declared and documented"
(cd "$scratch" && npx --no-install tsc --strict --noEmit --target es2022 --module nodenext --moduleResolution nodenext \
    --lib es2022,dom,esnext.disposable consumer.ts)
(cd "$scratch" && node check-types.mjs)

step "headless Chromium: the same flows in a page served from loopback"
(cd "$scratch" && node --test --test-reporter=spec browser.test.js)

step "examples/web: the browser chat end to end (a relay process serving it, three people in Chromium)"
cargo build -p sealpost-relay --bin sealpost-relay
web="$work/web"
rm -rf "$web" "$work/screenshots"
# The relay answers / with its status page; the chat lives under /chat/
# and imports the package as installed from the tarball.
mkdir -p "$web/chat"
cp examples/web/index.html examples/web/app.js examples/web/style.css "$web/chat/"
cp -r "$scratch/node_modules/sealpost" "$web/chat/sealpost"
cp examples/web/e2e.test.js "$scratch/"
(cd "$scratch" && SEALPOST_RELAY="$target/debug/sealpost-relay" SEALPOST_WEB="$web" \
    SEALPOST_SCREENSHOTS="$work/screenshots" node --test --test-reporter=spec e2e.test.js)

step "the relay's dashboard in Chromium, under a little real traffic"
cp relay/tests/dashboard.test.js "$scratch/"
(cd "$scratch" && SEALPOST_RELAY="$target/debug/sealpost-relay" \
    SEALPOST_SCREENSHOTS="$work/screenshots" node --test --test-reporter=spec dashboard.test.js)
ls "$work/screenshots"/*.png | sed 's/^/  screenshot: /'

step "wasm: all green ($((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzip)"
