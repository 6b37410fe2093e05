#!/usr/bin/env bash
# The whole test suite: what `make test` and CI (.ci/run) run. As root on Debian.
#   1. installs the packages the tests need and builds the OTP matrix chroots;
#   2. gofmt, go vet, staticcheck;
#   3. unit tests of every package (tests that start BEAM nodes run them in a
#      network namespace of their own, on OTP 25, 27 and 29), all of them:
#      under GONODE_TEST_STRICT=1 a missing prerequisite (root, the namespace,
#      a release of the matrix) fails its test instead of skipping it, and
#      internal/testreport fails the step if any test skipped or failed;
#   4. every fuzz target for a bounded number of inputs;
#   5. the integration suite: Elixir and gonode pods, real DNS (test/integration);
#   6. the compose suite (test/compose): the Dockerfile and docker-compose.yml
#      built and run with podman and docker-compose, offline (base images
#      built from Debian into /var/cache/gonode/compose), in namespaces of
#      their own; it fails if the machine is not left as found;
#   7. the end-to-end suite on a real single-node Kubernetes (test/e2e): the
#      cluster built from source by scripts/k8s-build.sh (about 20 minutes the
#      first time, cached in /var/cache/gonode/k8s, then seconds), started and
#      stopped by the suite, which fails if the machine is not left as found.
# Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
export GOFLAGS=${GOFLAGS:-}

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
./scripts/install-deps.sh
./scripts/otp-matrix.sh

step "gofmt, go vet and staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go vet -tags integration ./test/integration/...
go vet -tags e2e ./test/e2e/...
go vet -tags compose ./test/compose/...
# staticcheck's default checks, at a pinned version built from the Go module
# proxy into the cache directory (once).
staticcheck_version=v0.8.2
tools=${GONODE_TOOLS_CACHE:-/var/cache/gonode/tools}/staticcheck-$staticcheck_version
if [ ! -x "$tools/staticcheck" ]; then
  GOBIN="$tools" GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
"$tools/staticcheck" ./...
"$tools/staticcheck" -tags integration ./test/integration/...
"$tools/staticcheck" -tags e2e ./test/e2e/...
"$tools/staticcheck" -tags compose ./test/compose/...
# bench/plot (make bench's charts) is a module of its own, outside ./...
(cd bench/plot && go vet . && "$tools/staticcheck" .)

step "unit tests (BEAM tests run on OTP 25, 27, 29; a skipped test fails the step)"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/testreport" ./internal/testreport
GONODE_TEST_STRICT=1 go test -json -count=1 -timeout 15m -p 2 ./... 2>&1 | "$bin/testreport"

# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report "context deadline exceeded" as a failure at the deadline without any
# failing input (golang/go#75804, fixed in Go 1.27).
step "fuzz targets (${FUZZTIME:=10000x} each)"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $target"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
  done
done

step "integration tests (network namespaces, dnsmasq, Elixir and gonode pods)"
go test -count=1 -timeout 15m -tags integration ./test/integration/...

step "compose tests: the Dockerfile and docker-compose.yml with podman (test/compose)"
go test -count=1 -v -timeout 30m -tags compose ./test/compose/

step "end-to-end tests on a real single-node Kubernetes (test/e2e)"
./scripts/k8s-build.sh >/dev/null
go test -count=1 -v -timeout 60m -tags e2e ./test/e2e/

step "all tests passed"
