# Multi-stage build: a static binary in a small image, run as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/skolbro ./cmd/skolbro

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/skolbro /usr/local/bin/skolbro
# Mount the configuration, metadata/, attribute-release/ and keys at /etc/skolbro.
WORKDIR /etc/skolbro
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/skolbro"]
CMD ["serve", "--config", "/etc/skolbro/skolbro.yaml"]
