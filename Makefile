# gonode: see README.md. Both main targets need root (network namespaces).
.PHONY: demo test build deps bench

build:
	go build -o bin/gonode ./cmd/gonode

deps:
	./scripts/install-deps.sh
	./scripts/otp-matrix.sh

demo:
	./scripts/install-deps.sh
	./scripts/demo.sh

test:
	./scripts/test.sh

# The benchmark suite: BENCHMARKS.md's generated section and docs/bench/*.png
# from one run (root, a quiet machine; BENCHFLAGS="-quick -allow-busy" while
# developing). See scripts/bench.sh.
bench:
	./scripts/bench.sh $(BENCHFLAGS)
