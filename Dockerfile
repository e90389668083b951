# citecrawl as a small image: a static binary, the default configuration and
# rules, nothing else (no shell, no package manager).
#
#   docker build -t citecrawl .
#   docker run --rm -v "$PWD/out:/var/lib/citecrawl/out" citecrawl run
#
# Stage 1 builds with the Go toolchain; stage 2 copies only the result.
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a change of source does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that runs on an image without libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/citecrawl ./cmd/citecrawl \
 && /out/citecrawl version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/citecrawl /usr/local/bin/citecrawl
COPY configs/ /etc/citecrawl/
# The rules are readable files a user can mount over to change them.
ENV CITECRAWL_RULES=/etc/citecrawl/rules
WORKDIR /var/lib/citecrawl
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/citecrawl"]
CMD ["run"]
