# syntax=docker/dockerfile:1
# Images for docker-compose.yml:
#   target paw         paw (processor, sidecar, broker, CLI) + ONNX Runtime
#   target fluent-bit  the official Fluent Bit image + out_paw.so + ONNX Runtime

# ONNX Runtime's shared library, from npm onnxruntime-node (pinned), the
# same way `make ort` gets it.
FROM node:20-bookworm-slim AS ort
WORKDIR /src
COPY scripts/install-ort.sh scripts/install-ort.sh
RUN PAW_ORT_DIR=/ort scripts/install-ort.sh

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/paw ./cmd/paw \
 && CGO_ENABLED=1 go build -trimpath -buildmode=c-shared -o /out/out_paw.so ./plugin/cmd/out_paw

FROM debian:bookworm-slim AS paw
RUN useradd --system --uid 10001 --home /var/lib/paw paw \
 && mkdir -p /var/lib/paw/programs /var/lib/paw/metrics && chown -R paw /var/lib/paw
COPY --from=ort /ort/libonnxruntime.so.1 /usr/local/lib/paw/libonnxruntime.so.1
COPY --from=build /out/paw /usr/local/bin/paw
COPY configs /etc/paw
# encoder-v1 programs look for their encoders here: mount them read-only.
ENV PAW_ORT_LIB=/usr/local/lib/paw/libonnxruntime.so.1 PAW_ENCODERS=/var/lib/paw/encoders
USER paw
WORKDIR /var/lib/paw
ENTRYPOINT ["paw"]

FROM fluent/fluent-bit:4.0 AS fluent-bit
COPY --from=ort /ort/libonnxruntime.so.1 /usr/local/lib/paw/libonnxruntime.so.1
COPY --from=build /out/out_paw.so /fluent-bit/plugins/out_paw.so
# The image has no shell or curl; paw health serves as the healthcheck.
COPY --from=build /out/paw /usr/local/bin/paw
COPY configs/pipeline.yaml /etc/paw/pipeline.yaml
COPY configs/fluent-bit /fluent-bit/etc/paw
ENV PAW_ORT_LIB=/usr/local/lib/paw/libonnxruntime.so.1 PAW_ENCODERS=/var/lib/paw/encoders
CMD ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/paw/fluent-bit.compose.yaml"]
