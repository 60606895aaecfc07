"""Every default covgen has, once: the settings model and the library functions both read them here."""

from __future__ import annotations

#: Where generated tests go, relative to the project root.
TEST_DIR = "tests/covgen"
#: Runs every accepted test must pass (one of them in a fresh process beside the module's tests).
RUNS = 3
#: Seconds one candidate test may take.
TEST_TIMEOUT = 10.0
#: Attempts per gap: the first answer plus repairs.
MAX_ATTEMPTS = 2
#: Model requests in flight at once.
CONCURRENCY = 32
#: Exploration budget per gap for the model-free engine, in seconds.
EXPLORE_SECONDS = 5.0
#: Where a Java project keeps its production sources, relative to the root (``--source-root``).
JAVA_SOURCE_ROOT = "src/main/java"
#: Where a Java project keeps its tests, unless its build says otherwise.
JAVA_TEST_SOURCE_ROOT = "src/test/java"
