# fareway: the gRPC LLM router. Build: docker build -t fareway .
#
# The image serves every interface, so it refuses to start while the public demo keys
# (fareway-demo-key, fareway-admin-key) are accepted. Supply your own keys, either as variables:
#   docker run -p 50051:50051 -e FAREWAY_DEMO_KEY=... -e FAREWAY_ADMIN_KEY=... \
#     -e ANTHROPIC_API_KEY=... fareway
# or as a configuration file whose tenants and admin_keys carry your keys' sha256:
#   docker run -p 50051:50051 -v "$PWD/fareway.yaml:/etc/fareway/fareway.yaml:ro" fareway \
#     fareway serve --host 0.0.0.0 --config /etc/fareway/fareway.yaml
# `docker kill --signal HUP <container>` reloads that file without dropping streams.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 fareway
WORKDIR /app

# Everything but what .dockerignore leaves out (tests, benchmarks, caches), so a new package
# folder needs no change here.
COPY . .
RUN pip install --no-cache-dir . && rm -rf /app/build

# The default SQLite ledger is written to the working directory: give it a volume the
# non-root user owns, so spend survives container restarts.
RUN mkdir -p /var/lib/fareway && chown fareway /var/lib/fareway
WORKDIR /var/lib/fareway
VOLUME /var/lib/fareway
USER fareway
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD ["fareway", "health", "--target", "127.0.0.1:50051", "--timeout", "2"]
# Inside a container the loopback default would be unreachable, so bind every interface; with
# the demo keys still accepted this refuses to start (see the top of this file).
CMD ["fareway", "serve", "--host", "0.0.0.0"]
