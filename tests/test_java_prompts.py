"""The JUnit 5 prompt family: context pieces, messages byte for byte, and reading Java out of answers.

The golden prompt is tests/golden/java_prompt/<case>.txt; after a deliberate change regenerate
it and review the diff:

    COVGEN_REGENERATE_GOLDEN=1 python3 -m pytest tests/test_java_prompts.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from covgen.errors import UsageError
from covgen.extract import extract_java, extract_python
from covgen.languages import pack_named
from covgen.languages.java import find_java_units
from covgen.model import BranchCount, Gap
from covgen.prompts.context import PromptContext
from covgen.prompts.java_context import build_java_context
from covgen.prompts.junit_family import SYSTEM, SYSTEM_STRUCTURED, messages_for, repair_messages

GOLDEN = Path(__file__).resolve().parent / "golden" / "java_prompt"
SAMPLE = Path(__file__).resolve().parent / "samples" / "java_inventory"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "java"
WAREHOUSE = "src/main/java/com/acme/inventory/Warehouse.java"
EXISTING = """\
package com.acme.inventory;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class WarehouseTest {
    @Test
    void receivesStock() {
        Warehouse warehouse = new Warehouse();
        warehouse.receive(new Sku("ABC-123"), 2);
        assertEquals(2, warehouse.available(new Sku("ABC-123")));
    }
}
"""


def golden(case: str, text: str) -> None:
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("COVGEN_REGENERATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{case}: rendered prompt differs from {path}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLE, tmp_path, dirs_exist_ok=True)
    return tmp_path


def gap_for(root: Path, path: str, method: str, uncovered: tuple[int, ...] = (), branches: tuple[BranchCount, ...] = ()) -> tuple[Gap, str]:
    source = (root / path).read_text(encoding="utf-8")
    unit = next(u for u in find_java_units(source, path) if u.name == method)
    lines = uncovered or tuple(range(unit.start_line + 1, unit.end_line))
    return Gap(path, unit.qualname, unit.kind, unit.start_line, unit.end_line, unit.signature, lines, branches, 0.5, unit=unit), source


def context_for(root: Path, method: str, *, libraries: list[str], existing_test: str | None = None,
                uncovered: tuple[int, ...] = (), branches: tuple[BranchCount, ...] = ()) -> PromptContext:
    gap, source = gap_for(root, WAREHOUSE, method, uncovered, branches)
    return build_java_context(gap, source, find_java_units(source, WAREHOUSE), libraries=libraries, existing_test=existing_test, root=root)


def test_the_prompt_for_a_method_with_uncovered_lines_and_a_branch(project: Path) -> None:
    context = context_for(project, "reserve", libraries=["assertj", "junit-jupiter-params"], existing_test=EXISTING,
                          uncovered=(29, 35), branches=(BranchCount(31, 1, 2),))
    messages = messages_for(context)
    golden("reserve", f"=== system\n{messages[0]['content']}\n=== user\n{messages[1]['content']}\n")
    assert context.module == "com.acme.inventory.Warehouse"
    user = messages[1]["content"]
    # the collaborators: the nested type from this file, the sibling from the package folder
    assert "// Warehouse.Reservation, in this file\npublic static final class Reservation {" in user
    assert "// src/main/java/com/acme/inventory/Sku.java\npublic final class Sku {" in user
    # outlines hold signatures, never bodies, and no private methods
    assert "private void audit" not in user and "normalise" not in user and "toUpperCase" not in user
    assert "   29              throw new IllegalArgumentException(\"too many: \" + quantity);  // <- NOT COVERED" in user
    assert "// <- BRANCH: 1 of 2 outcomes never taken" in user
    assert "Mockito" not in user and "Hamcrest" not in user  # only the libraries on the classpath


def test_structured_and_repair_messages_follow_the_pytest_family_shape(project: Path) -> None:
    context = context_for(project, "available", libraries=[])
    first = messages_for(context, structured=True)
    assert first[0]["content"] == SYSTEM_STRUCTURED and '{"code"' in SYSTEM_STRUCTURED
    assert "```java" in SYSTEM and "package line, imports, one test class" in SYSTEM
    repaired = repair_messages(first, "```java\nclass T {}\n```", "COMPILE_ERROR: cannot find symbol")
    assert repaired[:2] == first
    assert repaired[2] == {"role": "assistant", "content": "```java\nclass T {}\n```"}
    assert "COMPILE_ERROR: cannot find symbol" in repaired[3]["content"] and "one ```java block" in repaired[3]["content"]


def test_the_prompt_is_byte_stable_and_gaps_of_one_class_share_its_prefix(project: Path) -> None:
    reserve = messages_for(context_for(project, "reserve", libraries=["mockito"]))
    again = messages_for(context_for(project, "reserve", libraries=["mockito"]))
    receive = messages_for(context_for(project, "receive", libraries=["mockito"]))
    assert reserve == again
    shared = reserve[1]["content"].split("## Types it uses", 1)[0]
    assert receive[1]["content"].startswith(shared.split("## Code under test", 1)[0])
    assert "## Class Warehouse (outline)" in shared


def test_the_budget_trimmer_drops_pieces_lowest_priority_first(project: Path) -> None:
    context: PromptContext | None = context_for(project, "reserve", libraries=["assertj"], existing_test=EXISTING)
    dropped = []
    while context is not None:
        previous = context
        context = context.without_lowest()
        if context is not None:
            dropped.append(next(p.title for p in previous.pieces if p not in context.pieces))
    assert dropped == ["An existing test of this class (follow its style)", "Types it uses from this package (outlines)",
                       "Class Warehouse (outline)", "Its package and imports", "Test libraries on the classpath (use only these)",
                       "Class under test"]
    assert previous.focal and previous.goal  # the focal method and the task never go


def test_secrets_are_redacted_and_siblings_outside_the_root_are_never_read(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    warehouse = project / WAREHOUSE
    token = "ghp_" + "Zq8r2LmX4vN7tB1cK9dF3sH6jW0pY5uE2aG8"
    warehouse.write_text(warehouse.read_text().replace("    private final Map<Sku, Integer> onHand",
                                                       f'    private static final String TOKEN = "{token}";\n    private final Map<Sku, Integer> onHand'))
    outside = tmp_path_factory.mktemp("outside") / "Sku.java"
    outside.write_text("package com.acme.inventory;\npublic final class Sku { public String secretOutline() { return null; } }\n")
    sibling = project / "src/main/java/com/acme/inventory/Sku.java"
    sibling.unlink()
    sibling.symlink_to(outside)
    user = messages_for(context_for(project, "reserve", libraries=[]))[1]["content"]
    assert token not in user and "<redacted:github-token>" in user
    assert "secretOutline" not in user and "Sku.java" not in user


def test_unknown_libraries_are_a_usage_error(project: Path) -> None:
    with pytest.raises(UsageError, match="unknown test libraries testng"):
        context_for(project, "reserve", libraries=["testng"])


def test_the_bundled_fixture_nested_method_gets_its_own_class_outline() -> None:
    path = "src/main/java/com/example/geo/Shapes.java"
    gap, source = gap_for(FIXTURE, path, "isSquare")
    context = build_java_context(gap, source, find_java_units(source, path), libraries=[], root=FIXTURE)
    assert context.module == "com.example.geo.Shapes"
    titles = [p.title for p in context.pieces]
    assert "Class Rect (outline)" in titles
    assert "Put the test class in package `com.example.geo`" in context.pieces[1].text


ANSWER = """\
<think>
Maybe:
```java
class Draft { @Test void t() {} }
```
</think>
Here is the code under test again for reference:

```java
public class Warehouse { }
```

And the tests:

```java
package com.acme.inventory;

import org.junit.jupiter.api.Test;

class WarehouseCovgenTest {
    @Test
    void reserves() { }
}
```
"""


def test_extract_java_takes_the_block_with_a_test_class_after_the_thinking() -> None:
    code = extract_java(ANSWER)
    assert code.startswith("package com.acme.inventory;") and "class WarehouseCovgenTest" in code and "Draft" not in code
    assert extract_java("<think>still thinking about ```java") == "\n"
    assert extract_java("```java\npackage a;\nclass T {\n  @Test void t() {}\n") == "package a;\nclass T {\n  @Test void t() {}\n"
    assert extract_java("class T { @Test void t() {} }") == "class T { @Test void t() {} }\n"
    # the python extractor does not take java blocks
    assert "```" not in extract_python("```python\nx = 1\n```\n```java\nclass T {}\n```")


def test_the_packs_extract_their_own_language() -> None:
    java, python = pack_named("java"), pack_named("python")
    assert java is not None and python is not None
    assert java.extract(ANSWER) == extract_java(ANSWER)
    assert python.extract("```python\nimport a\n```") == "import a\n"
    assert java.messages_for(PromptContext("m", "p", "q", (), "focal", "goal"))[0]["content"] == SYSTEM


def ask_the_engine(project: Path, answer: str, *, structured: bool = False) -> tuple[tuple[str, ...], dict[str, Any]]:
    """A Java target through LlmEngine and a real HTTP server; the sources read back and the request sent."""
    import asyncio

    from covgen.engines import Target
    from covgen.engines.llm import LlmEngine, OpenAICompatBackend

    from support.vllm_stub import StubServer, StubState

    gap, source = gap_for(project, WAREHOUSE, "reserve")
    units = tuple(find_java_units(source, WAREHOUSE))
    context = build_java_context(gap, source, units, libraries=[], root=project)
    target = Target(gap, context.module, source, units, context=context, language="java")

    async def scenario(url: str) -> tuple[str, ...]:
        backend = OpenAICompatBackend(url, retry_wait=0.01)
        await backend.start(wait_seconds=5)
        engine = LlmEngine(backend, candidates=1, structured=structured)
        proposal = await engine.propose(target)
        await engine.aclose()
        return proposal.sources

    state = StubState(script={gap.qualname: [[answer]]})
    with StubServer(state) as server:
        sources = asyncio.run(scenario(server.url))
    return sources, state.requests[0]


def test_the_model_engine_asks_with_junit_prompts_and_reads_java_answers(project: Path) -> None:
    sources, request = ask_the_engine(project, ANSWER)
    assert sources == (extract_java(ANSWER),) and "class WarehouseCovgenTest" in sources[0]
    assert request["messages"][0]["content"] == SYSTEM


def test_structured_answers_for_java_are_asked_for_as_a_test_class(project: Path) -> None:
    import json

    code = extract_java(ANSWER)
    sources, request = ask_the_engine(project, json.dumps({"code": code}), structured=True)
    assert sources == (code,)
    schema = request["response_format"]["json_schema"]
    assert schema["name"] == "junit_test_class" and "JUnit 5" in schema["schema"]["properties"]["code"]["description"]
