# syntax=docker/dockerfile:1
# The usagestream image: a static binary on a distroless base, run as a
# non-root user. Used by compose/docker-compose.yml; configuration comes from
# USAGESTREAM_* environment variables (see `usagestream <command> --help`).
#
#   docker build -t usagestream .
#
# The build stage's Go version is go.mod's (compose/check_compose.py checks it).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: Pebble and franz-go are pure Go, so the binary needs no libc. The
# test lane (scripts/test.d/60-realkafka.sh) builds it with these same flags.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/usagestream ./cmd/usagestream \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usagestream /usr/local/bin/usagestream
# The processors' state (Pebble), owned by the image's user so a fresh named
# volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/state /var/lib/usagestream
USER 65532:65532
WORKDIR /var/lib/usagestream
ENV USAGESTREAM_STATE_DIR=/var/lib/usagestream/state \
    USAGESTREAM_LOG_FORMAT=json
EXPOSE 8088
ENTRYPOINT ["/usr/local/bin/usagestream"]
CMD ["--help"]
