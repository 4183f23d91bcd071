# syntax=docker/dockerfile:1
#
# The pipeline service for Cloud Run: a static Go binary (CGO off, embedded
# time zone database) on distroless static, run as the nonroot user (65532).
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/pipeline/pipeline:TAG .
#
# Pipeline files are copied to /etc/pipeline/pipelines (PIPELINE_FILE). The
# example steps write under PIPELINE_DATA=/tmp/pipeline at run time (Cloud
# Run's in-memory disk); nothing is written under /tmp at build time.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Go's temporary files go here, not under /tmp.
ENV GOTMPDIR=/src/.gotmp CGO_ENABLED=0 GOFLAGS=-trimpath
RUN mkdir -p /src/.gotmp
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags='-s -w' -tags timetzdata -o /out/pipeline ./cmd/pipeline \
    && /out/pipeline validate --file pipelines

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pipeline /usr/local/bin/pipeline
COPY pipelines /etc/pipeline/pipelines
ENV PIPELINE_FILE=/etc/pipeline/pipelines \
    PIPELINE_BACKEND=gcp \
    PIPELINE_DATA=/tmp/pipeline
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/pipeline"]
CMD ["serve"]
