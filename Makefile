# gonode: see README.md. Both main targets need root (network namespaces).
.PHONY: demo test build deps

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
