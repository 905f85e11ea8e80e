# mangwale-exotel: one binary, two stages.
#
#   docker build -t mangwale-exotel .
#   docker run -p 3100:3100 -v mangwale-data:/var/lib/mangwale-exotel mangwale-exotel
#
# The builder compiles the release binary with the default `whisper` feature
# (whisper.cpp through whisper-rs: cmake, a C++ compiler and libclang for
# bindgen). The runtime image holds the binary, espeak-ng (the embedded
# voice), sox and CA certificates, and runs as an unprivileged user.
# Migrations run at start (`serve` applies them before it listens).
# See docs/deploy.md.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The configuration, flows and OpenAPI document are compiled in
# (include_str!), so the whole workspace is the build context.
COPY . .
RUN cargo build --release --locked -p mangwale-server --bin mangwale-exotel \
 && install -m 0755 target/release/mangwale-exotel /usr/local/bin/mangwale-exotel

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 mangwale \
 && useradd --system --uid 10001 --gid mangwale --home-dir /var/lib/mangwale-exotel --create-home \
      --shell /usr/sbin/nologin mangwale \
 && install -d -o mangwale -g mangwale /var/lib/mangwale-exotel/data /var/lib/mangwale-exotel/models
COPY --from=builder /usr/local/bin/mangwale-exotel /usr/local/bin/mangwale-exotel

# The SQLite file (when DATABASE_URL is not PostgreSQL), the sandbox's
# generated keys live in it, and the Whisper models (`models fetch`).
WORKDIR /var/lib/mangwale-exotel
VOLUME ["/var/lib/mangwale-exotel"]
ENV HOST=0.0.0.0 \
    PORT=3100 \
    DATABASE_URL=sqlite:/var/lib/mangwale-exotel/data/mangwale-exotel.db \
    MODELS_DIR=/var/lib/mangwale-exotel/models \
    LOG_FORMAT=json
USER mangwale:mangwale
EXPOSE 3100

# No curl in this image: the binary asks its own /health (2xx = ok or
# degraded; 503 = down).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/mangwale-exotel", "health-check", "--timeout", "4"]

# SIGTERM finishes in-flight work and stops the workers (cli.rs).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mangwale-exotel"]
CMD ["serve"]
