# The stampede image for distributed runs (`stampede k8s` manifests use it): one static binary
# (musl: the C parts, SQLite and ring, are compiled against it too) on a small Alpine, whose
# /bin/sh runs the generators' command; run as an unprivileged user (uid 10001, as the
# manifests' securityContext expects).
#
#     docker build -t stampede:0.1.0 .
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev binutils
WORKDIR /src
COPY . .
# Static by default on musl; the check fails the build if anything is linked dynamically.
RUN cargo build --release --locked --bin stampede \
 && strip target/release/stampede \
 && if readelf -d target/release/stampede | grep -q NEEDED; then echo "not static" >&2; exit 1; fi

FROM alpine:3.20
RUN addgroup -S -g 10001 stampede && adduser -S -D -H -u 10001 -G stampede stampede
COPY --from=build /src/target/release/stampede /usr/local/bin/stampede
USER 10001:10001
# Run directories go to a volume mounted here (the manifests mount the shared claim at /runs).
WORKDIR /runs
ENTRYPOINT ["stampede"]
CMD ["--help"]
