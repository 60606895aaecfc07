# covgen with everything its runs need: Python 3.11, a JDK, the JUnit Platform console launcher,
# the JaCoCo agent, bubblewrap and git. No network is needed at run time.
#   docker build -t covgen .          (without a registry: bash scripts/build-image.sh)
#   docker run --rm -v "$PWD:/project" covgen run --report reports/coverage.xml
# The README's "Docker" section has the options bubblewrap needs inside a container.

# The builder makes the virtual environment; pip, setuptools and the wheel stay behind in it.
# A CA bundle passed as the build secret `ca-bundle` (build-image.sh passes the host's) lets pip
# through a TLS-inspecting proxy; without it pip uses the image's own certificates.
FROM debian:bookworm-slim AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY covgen ./covgen
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m venv /opt/covgen \
 && /opt/covgen/bin/pip install --no-cache-dir --disable-pip-version-check --quiet wheel \
 && /opt/covgen/bin/pip wheel --no-cache-dir --disable-pip-version-check --quiet --no-deps -w /wheels . \
 && /opt/covgen/bin/pip install --no-cache-dir --disable-pip-version-check --quiet /wheels/covgen-*.whl \
 && /opt/covgen/bin/pip uninstall --yes --quiet wheel setuptools pip

# Same base, so the venv's interpreter link (/usr/bin/python3) holds in this stage too.
# -slim drops man pages, and the JRE's postinst fails linking java.1.gz into a missing man1/.
# The project is mounted in and owned by someone else; git must still read it (covgen run --diff).
FROM debian:bookworm-slim
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 default-jdk-headless junit5 libjacoco-java bubblewrap git \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log \
 && git config --system safe.directory '*' \
 && useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin covgen
COPY --from=builder /opt/covgen /opt/covgen
# XDG_CACHE_HOME: the JVM helpers covgen compiles on first use go there, writable with a
# read-only root filesystem (a tmpfs on /tmp) and for any --user, whose $HOME may not exist.
ENV PATH=/opt/covgen/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8 \
    XDG_CACHE_HOME=/tmp/covgen-cache
USER covgen
WORKDIR /project
ENTRYPOINT ["covgen"]
CMD ["--help"]
