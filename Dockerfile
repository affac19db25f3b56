# syntax=docker/dockerfile:1
# Multi-stage build: a static tunterm binary on a small runtime image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/tunterm ./cmd/tunterm

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/tunterm /usr/bin/tunterm
# Capabilities the daemon needs (tunterm run):
#   CAP_NET_ADMIN  attach XDP programs, read/follow the neighbour table
#   CAP_NET_RAW    AF_XDP / AF_PACKET sockets
#   CAP_BPF, CAP_PERFMON (or CAP_SYS_ADMIN on older kernels)  load BPF programs/maps
#   CAP_IPC_LOCK   lock UMEM memory (or raise RLIMIT_MEMLOCK)
#   CAP_NET_BIND_SERVICE  IKE on UDP 500/4500, RadSec on TCP 2083
# e.g. docker run --network host --cap-add NET_ADMIN --cap-add NET_RAW \
#        --cap-add BPF --cap-add PERFMON --cap-add IPC_LOCK --cap-add NET_BIND_SERVICE \
#        -v /etc/tunterm:/etc/tunterm:ro tunterm run --config /etc/tunterm/tunterm.yaml
# `tunterm replay` needs no capabilities at all.
ENTRYPOINT ["/usr/bin/tunterm"]
CMD ["help"]
