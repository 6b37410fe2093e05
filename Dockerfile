# gonode's container image: a static binary on a small base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /gonode ./cmd/gonode

FROM debian:bookworm-slim
COPY --from=build /gonode /usr/local/bin/gonode
# 4369: EPMD (embedded mode); 9000: distribution (GONODE_DIST_PORT); 9568: metrics and probes.
EXPOSE 4369 9000 9568
ENV GONODE_DIST_PORT=9000 GONODE_LOG_FORMAT=json
USER 65534
ENTRYPOINT ["/usr/local/bin/gonode"]
