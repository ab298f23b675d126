# Builds the sluice binary and ships it with the bundled pipelines and patterns.
FROM rust:1-bookworm AS build
# The ruby filter embeds CRuby: Ruby's headers and libruby, and libclang for the bindings.
RUN apt-get update && apt-get install -y --no-install-recommends ruby-dev libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY patterns ./patterns
RUN cargo build --release --locked && strip target/release/sluice

FROM debian:bookworm-slim
# libssl3: the kafka plugins' librdkafka links OpenSSL (built with the rust image's headers).
# libruby3.1: the ruby filter's interpreter and Ruby's standard library.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 libruby3.1 \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/sluice sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
COPY pipelines /etc/sluice/pipelines
COPY samples /usr/share/sluice/samples
COPY deploy/docker-entrypoint.sh /usr/local/bin/sluice-entrypoint
USER sluice
WORKDIR /var/lib/sluice
EXPOSE 5044 9600
# The API is published on 0.0.0.0 when SLUICE_API_TOKEN (or SLUICE_API_TOKEN_FILE) is
# set, and stays on the container's loopback otherwise (see the entrypoint).
ENTRYPOINT ["sluice-entrypoint"]
CMD ["-f", "/etc/sluice/pipelines/filebeat-elasticsearch.conf"]
