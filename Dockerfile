# gonode's container image: a static binary, nothing else, run as nobody.
#
#   docker build -t gonode --build-arg VERSION=$(git describe --always) .
#
# The build stage needs the Go module proxy (go mod download); the image has
# no shell, no libc and no other program: the HEALTHCHECK and anything else
# that probes the node from inside go through the binary (`gonode health`).
# docker-compose.yml builds it; test/compose builds it offline and checks it.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gonode ./cmd/gonode

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="gonode" \
      org.opencontainers.image.description="An Erlang distribution node in Go that joins Elixir/Erlang clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/gonode/gonode"
COPY --from=build /out/gonode /usr/local/bin/gonode
# 4369: EPMD (embedded mode); 9000: distribution (GONODE_DIST_PORT); 9568:
# metrics and probes (GONODE_METRICS_ADDR).
EXPOSE 4369 9000 9568
ENV GONODE_DIST_PORT=9000 GONODE_LOG_FORMAT=json
# nobody: the image has no /etc/passwd, so the user is given by number.
USER 65534:65534
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/gonode", "health"]
ENTRYPOINT ["/usr/local/bin/gonode"]
