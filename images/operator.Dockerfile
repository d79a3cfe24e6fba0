# syntax=docker/dockerfile:1
# The operator image: the controller that turns Pipelines into Jobs.
# For users' own registries (the local test bed builds the same layout
# without Docker: hack/images/build):
#
#   docker build -f images/operator.Dockerfile -t <registry>/tributary/operator:<version> .
#
# Stage 1 builds a release binary with the Rust toolchain on Debian bookworm.
# Stage 2 only copies files (no shell, no package manager), so it works on any
# glibc-2.36 base: debian:bookworm-slim by default, or a distroless "cc"
# Debian 12 image from your mirror (--build-arg RUNTIME_IMAGE=...), which is
# smaller and has no shell. The binary needs glibc, libgcc_s and CA
# certificates; it runs as the non-root user 65532.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and the target dir between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tributary-operator \
 && install -D -m 755 target/release/tributary-operator /rootfs/usr/local/bin/tributary-operator
# Everything the runtime stage needs, prepared here because it has no shell:
# CA certificates (a slim base has none), a home for the non-root user and a
# world-writable /tmp.
RUN install -D -m 644 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && install -d -m 700 -o 65532 -g 65532 /rootfs/home/nonroot \
 && install -d -m 1777 /rootfs/tmp

FROM ${RUNTIME_IMAGE}
COPY --from=build /rootfs/ /
ENV HOME=/home/nonroot SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, so that runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tributary-operator"]
