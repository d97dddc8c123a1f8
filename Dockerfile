# fareway: the gRPC LLM router. Build: docker build -t fareway .
# Run:  docker run -p 50051:50051 -e ANTHROPIC_API_KEY=... fareway
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 fareway
WORKDIR /app

COPY pyproject.toml README.md ./
COPY core core
COPY config config
COPY budgets budgets
COPY routing routing
COPY providers providers
COPY server server
COPY client client
COPY cli cli
COPY protos protos
RUN pip install --no-cache-dir . && rm -rf /app/build

USER fareway
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD ["fareway", "health", "--target", "127.0.0.1:50051", "--timeout", "2"]
# Inside a container the loopback default would be unreachable, so bind every interface.
CMD ["fareway", "serve", "--host", "0.0.0.0"]
