#!/usr/bin/env bash
# Install everything covgen's tests need on a fresh Debian machine, then run them.
#   bash scripts/test.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."

# bubblewrap is the sandbox covgen runs candidates in. The real Java toolchain the tests drive:
# javac 17, the JUnit Platform console launcher,
# the JaCoCo 0.8.6 agent and report library, and lcov for an independent tracefile summary.
# Maven and the plugins of an offline build (Debian's repository, /usr/share/maven-repo, stands
# in for Maven Central, which the tests never reach).
apt_packages=(default-jdk-headless junit5 libjacoco-java lcov git bubblewrap
              maven libmaven-compiler-plugin-java libmaven-resources-plugin-java libmaven-dependency-plugin-java
              libsurefire-java libmaven-jar-plugin-java maven-debian-helper)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 -m mypy
# pytest's exit code 5 (no tests collected) is a failure here, like any other non-zero code.
python3 -m pytest "$@"
