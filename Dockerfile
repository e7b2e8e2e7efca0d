# finstream: one image for `finstream run`, `generate`, `import` and `reset`.
# Build: docker build -t finstream .   (or `docker compose build`)

FROM rust:1.85-bookworm AS build
# libclang for RocksDB's bindgen; a C/C++ toolchain and make for RocksDB and librdkafka, which
# their crates compile from source (as scripts/setup.sh installs on a developer machine).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev clang g++ make cmake perl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The same build command as the README's "Deployment" section (checked by finstream/tests/deploy.rs).
RUN cargo build --release --locked -p finstream

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/finstream finstream \
    && mkdir -p /var/lib/finstream /etc/finstream \
    && chown finstream /var/lib/finstream
COPY --from=build /src/target/release/finstream /usr/local/bin/finstream
COPY finstream.example.toml /etc/finstream/finstream.example.toml
USER finstream
WORKDIR /var/lib/finstream
VOLUME ["/var/lib/finstream"]
# The query service (and /metrics for Prometheus).
EXPOSE 8080
ENTRYPOINT ["finstream"]
CMD ["run", "--config", "/etc/finstream/finstream.toml"]
