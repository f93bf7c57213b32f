# syntax=docker/dockerfile:1
# The Vireo image: the `vireo` command (controller and simulated hosts), run by Node 24 straight from the
# TypeScript sources (type stripping: nothing is compiled). Only runtime dependencies are installed.
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t ghcr.io/vireo-dev/vireo:0.1.0 .
#
# What the image relies on (npm ci --omit=dev, then `vireo` running from the copied files alone) is
# checked without Docker by test/deploy/image.test.ts.

# The final stage uses the same Debian slim image as the build stage, not distroless: the entrypoint
# needs `node` on PATH (distroless keeps it at /nodejs/bin/node), the two stages then share one Node build,
# and a shell stays available to `kubectl exec` into a simulator. npm, npx, corepack and yarn are removed
# from it, and the process runs as an unprivileged user on a read-only root filesystem (see the chart).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only, exactly as locked. No install scripts: the one that would run belongs to the
# "node" devDependency, which is not installed here anyway.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="vireo" \
      org.opencontainers.image.description="A declarative controller for a virtualization platform: VMs, hosts and host clusters as Kubernetes custom resources, reconciled against simulated hypervisor hosts." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vireo-dev/vireo" \
      org.opencontainers.image.documentation="https://github.com/vireo-dev/vireo/blob/main/docs/deploy.md" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"

# Package managers are not needed at run time: fewer binaries, fewer CVEs to triage.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*

# The V8 heap from the container's memory limit (Node reads the cgroup's): half of it for the old space, the
# rest for code and buffers; young-generation semi-spaces of 4 MiB, where V8's default grows them to 64 MiB
# each. The chart sets the same, as controller.nodeOptions.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size-percentage=50 --max-semi-space-size=4" \
    NODE_COMPILE_CACHE=/app/.compile-cache
WORKDIR /app
# Owned by root and read-only to the runtime user: the process cannot change its own code.
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY controller ./controller
COPY crds ./crds
# The console's page, served by `vireo run` (its libraries are runtime dependencies, in node_modules).
COPY console ./console

# Every module's stripped TypeScript and V8 code, cached when the image is built, so the process never
# loads Node's TypeScript stripper (about 30 MiB resident; docs/decisions/0013). Node keeps a cache per
# user: it is filled as the user that runs, then made read-only to it like the code it was made from.
# Run as another user (a restricted SCC's), Node strips the types itself, as without the cache.
RUN install -d -o 65532 -g 65532 /app/.compile-cache
USER 65532:65532
RUN node controller/cli/compile-cache.ts
USER root
RUN chown -R root:root /app/.compile-cache && chmod -R a+rX,go-w /app/.compile-cache

# 65532 is the conventional "nonroot" UID/GID (distroless, many controllers); the chart runs it as such.
USER 65532:65532
# 8080: /metrics, /healthz, /readyz of `vireo run`; 9440: the API of `vireo hostsim`.
EXPOSE 8080 9440
ENTRYPOINT ["node", "/app/controller/cli/vireo.ts"]
CMD ["--help"]
