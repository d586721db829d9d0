# The serai node image: the release binary as /usr/local/bin/serai on Debian slim, run as a
# non-root user (UID/GID 65532, what k8s/base/statefulset.yaml runs as).
#
#   docker build -t serai:latest .
#   docker run --rm -p 7350:7350 -p 7351:7351 \
#     -e SERAI_DATABASE_URL='postgresql://serai:PASSWORD@HOST:5432/serai?sslmode=disable' \
#     -e SERAI_SERVER_KEY=... -e SERAI_HTTP_KEY=... -e SERAI_ADMIN_TOKEN=... \
#     -e SERAI_CLUSTER_SECRET=... -e SERAI_SESSION_ENCRYPTION_KEY=... \
#     -e SERAI_REFRESH_ENCRYPTION_KEY=... serai:latest
#
# The entrypoint is `serai node`: it refuses to start while a secret is at its built-in
# default (see README.md, "Secrets"). `serai migrate` is the same image with another command
# (`docker run ... --entrypoint serai serai:latest migrate`; k8s/base/migrate-job.yaml).
# Kubernetes: k8s/README.md.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Only what the build reads (.dockerignore keeps target/, .git and the rest out of the
# context): the manifest and lock file, the sources, the embedded SQL, and the benches the
# manifest declares.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY schema ./schema
COPY benches ./benches
# Release profile from Cargo.toml: no debug info.
RUN cargo build --release --locked --bin serai \
    && cp target/release/serai /usr/local/bin/serai

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 serai \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin serai
COPY --from=build /usr/local/bin/serai /usr/local/bin/serai
# Listen on every interface inside the container (the built-in defaults are 127.0.0.1, which
# nothing outside the container reaches). The ports are the defaults: clients, admin, peers.
ENV SERAI_CLIENT_ADDR=0.0.0.0:7350 \
    SERAI_ADMIN_ADDR=0.0.0.0:7351 \
    SERAI_PEER_ADDR=0.0.0.0:7352
EXPOSE 7350 7351 7352
USER 65532:65532
# Exec form: serai is PID 1 and gets SIGTERM itself, which drains the node.
ENTRYPOINT ["serai", "node"]
