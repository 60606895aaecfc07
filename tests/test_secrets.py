"""Secrets never leave the machine: not in a first prompt, not in a repair turn, not in the audit log.

The end-to-end test runs `covgen run --engine llm` on a project whose code holds one credential
of every kind covgen knows, against the scripted local server. The model's first answer fails
in ways that put those credentials into pytest's output (assertion diffs, the traceback's source
lines), which covgen sends back in the repair turn. The server keeps every request body as the
bytes it received; none may hold a secret, and neither may `.covgen/requests.jsonl`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import httpx
import pytest

from covgen.redact import redact
from support.vllm_stub import StubServer, StubState
from test_run_llm import fence, run_covgen

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e

# Fake credentials, each shaped like the real thing. kind → (value, placeholder kind).
SECRETS = {
    "stripe": ("sk_live_51HqLyjWDarjtT1zdp7dcXYZabc8Qm2Vn4Rt6Wp9Ks3Lx7Jd5Fg1Hz0Cb", "stripe-key"),
    "stripe-restricted": ("rk_live_51HqLyjWDarjtT1zdp7dcAbCdEfGhIjKl9", "stripe-key"),
    "gitlab": ("glpat-Zx8vQ2mN4pR7sT1uW3yB", "gitlab-token"),
    "huggingface": ("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", "huggingface-token"),
    "aws-id": ("AKIAQ3EGRTZ7LMNX4PWV", "aws-access-key"),
    "aws-pair": ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9Kq2Lm8Vb", "aws-secret-key"),
    "azure": ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", "azure-key"),
    "github": ("ghp_R2d2C3poBb8Yoda9Luke7Leia6Han5Chewie4", "github-token"),
    "openai": ("sk-proj-Q9x8W7v6U5t4S3r2Q1p0OnMlKjIhGfEd", "api-key"),
    "database": ("Tr0ub4dor-and-3-horses", "password"),
    "session": ("q8Zr2LxV0mN5tB7wK3yH9cF1dJ6gP4sA", "high-entropy-string"),
    "signing": ("MIIEowIBAAKCAQEAvK3mZp8QzX2Jd6YqWn1Lr0TbF5sHcGu9EaVi7NoPyM4RlKxSt", "private-key"),
}
#: An AWS secret access key in a comment: no quotes, no variable name around it.
BARE_AWS_SECRET = "Zq7Kp2Lm9Vb4Nx8Rt3Wy6Hd1Jg5Fc0Sa/Ue+Yo2T"

CREDS = f'''\
"""Credentials a careless team kept in code (all fake)."""


def credential(kind: str) -> str:
    """The credential named `kind`."""
    # rotated in May; the old AWS secret was {BARE_AWS_SECRET}
    table = {{
        "stripe": "{SECRETS["stripe"][0]}",
        "stripe-restricted": "{SECRETS["stripe-restricted"][0]}",
        "gitlab": "{SECRETS["gitlab"][0]}",
        "huggingface": "{SECRETS["huggingface"][0]}",
        "aws-id": "{SECRETS["aws-id"][0]}",
        "aws-pair": "{SECRETS["aws-pair"][0]}",
        "azure": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={SECRETS["azure"][0]};EndpointSuffix=core.windows.net",
        "github": "{SECRETS["github"][0]}",
        "openai": "{SECRETS["openai"][0]}",
        "database": "postgres://app:{SECRETS["database"][0]}@db.internal:5432/app",
        "session": "{SECRETS["session"][0]}",
        "signing": """-----BEGIN RSA PRIVATE KEY-----
{SECRETS["signing"][0]}
-----END RSA PRIVATE KEY-----""",
    }}
    if kind not in table:
        raise KeyError(f"no credential named {{kind}}")
    return table[kind]
'''

# Fails so that pytest prints every credential: an assertion diff per kind, and a KeyError whose
# long traceback lists the function's source. It also echoes one secret itself, as an answer may.
LEAKY_TESTS = fence("\n".join(
    [
        "import pytest",
        "from creds import credential",
        "",
        "def test_unknown_kind():",
        '    assert credential("nope") == ""',
        "",
        f'def test_not_the_old_hf_token():\n    assert credential("huggingface") != "{SECRETS["huggingface"][0]}"',
    ]
    + [f'\ndef test_{kind.replace("-", "_")}():\n    assert credential("{kind}") == "x"' for kind in SECRETS]
))
GOOD_TESTS = fence("""
    import pytest
    from creds import credential

    def test_github_token_shape():
        assert credential("github").startswith("ghp_")

    def test_unknown_kind_is_a_key_error():
        with pytest.raises(KeyError, match="no credential named nope"):
            credential("nope")
""")


def all_secrets() -> list[str]:
    return [value for value, _ in SECRETS.values()] + [BARE_AWS_SECRET]


@pytest.fixture
def creds_project(tmp_path: Path, producers) -> dict[str, Path]:
    root = tmp_path / "creds"
    (root / "tests").mkdir(parents=True)
    (root / "creds.py").write_text(CREDS)
    (root / "tests" / "test_creds.py").write_text("from creds import credential\n\n\ndef test_imports():\n    assert credential\n")
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    return {"root": root, "report": producers.python_reports(root, tmp_path / "reports")["coveragepy"]}


def test_no_secret_reaches_the_server_or_the_audit_log(creds_project, tmp_path: Path) -> None:
    root = creds_project["root"]
    state = StubState(script={"credential": [[LEAKY_TESTS], [GOOD_TESTS]]})
    summary_path = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = run_covgen(root, "--report", str(creds_project["report"]), "--engine", "llm", "--model-url", server.url,
                            "--candidates", "1", "--output", f"json:{summary_path}")
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["accepted_tests"] == 2  # the repair turn happened and worked

    first, repair = state.requests
    # The repair turn carried pytest's output for every credential — as placeholders.
    feedback = repair["messages"][-1]["content"]
    assert "test_unknown_kind: FAILED" in feedback and "KeyError" in feedback
    for kind in {kind for _, kind in SECRETS.values()} | {"aws-secret-key", "private-key"}:
        assert f"<redacted:{kind}>" in feedback, kind
    assert f"<redacted:{SECRETS['huggingface'][1]}>" in repair["messages"][2]["content"]  # the model's own echo
    assert "<redacted:aws-secret-key>" in first["messages"][1]["content"]  # the bare one, from the source

    # Not one byte of a secret in any request (chat and /tokenize), raw or JSON-decoded, nor in the log.
    sent = [raw.decode("ascii") for _, raw, _ in state.raw_requests]
    assert any("/tokenize" == path for path, _, _ in state.raw_requests)
    decoded = [json.dumps(json.loads(body), ensure_ascii=False) for body in sent]
    log = (root / ".covgen" / "requests.jsonl").read_text(encoding="utf-8")
    logged = [json.dumps(json.loads(line), ensure_ascii=False) for line in log.splitlines()]
    assert len(logged) == 2
    for secret in all_secrets():
        for text in (*sent, *decoded, log, *logged):
            assert secret not in text and secret.replace("/", "\\/") not in text


@pytest.mark.parametrize("kind", sorted(set(SECRETS) - {"signing"}))
def test_each_kind_is_replaced_by_a_placeholder_that_names_it(kind: str) -> None:
    line = next(line for line in CREDS.splitlines() if SECRETS[kind][0] in line)
    cleaned = redact(line)
    assert SECRETS[kind][0] not in cleaned
    assert f"<redacted:{SECRETS[kind][1]}>" in cleaned
    # The rest of the line is kept: the model still sees what the code does.
    assert cleaned.split(":", 1)[0] == line.split(":", 1)[0]


def test_a_private_key_goes_whole_and_its_body_alone_goes_too() -> None:
    block = CREDS[CREDS.index("-----BEGIN") : CREDS.index('""",')]
    assert redact(block) == "<redacted:private-key>"
    # A traceback cut to its last lines can hold the key's body without its BEGIN line.
    assert redact(f"…{SECRETS['signing'][0]}\n-----END RSA PRIVATE KEY-----") == "…<redacted:high-entropy-string>\n-----END RSA PRIVATE KEY-----"


def test_secrets_in_pytest_output_are_replaced() -> None:
    diff = textwrap.dedent(f"""\
        E       AssertionError: assert 'postgres://app:{SECRETS["database"][0]}@db.internal:5432/app' == 'x'
        E         - x
        E         + {SECRETS["stripe"][0]}
        ----------------------------- Captured stdout call -----------------------------
        key id {SECRETS["aws-id"][0]} secret {BARE_AWS_SECRET}
        E       AssertionError: assert '-----BEGIN RSA PRIVATE KEY-----\\n{SECRETS["signing"][0]}\\n-----END RSA PRIVATE KEY-----' == 'x'
    """)
    cleaned = redact(diff)
    assert not [secret for secret in all_secrets() if secret in cleaned]
    assert "postgres://app:<redacted:password>@db.internal:5432/app" in cleaned
    assert "key id <redacted:aws-access-key> secret <redacted:aws-secret-key>" in cleaned
    assert "assert '<redacted:private-key>' == 'x'" in cleaned


def test_redaction_is_idempotent_so_prompts_stay_byte_stable() -> None:
    once = redact(CREDS)
    assert redact(once) == once
    assert not [secret for secret in all_secrets() if secret in once]


@pytest.mark.parametrize("package", [click, httpx], ids=lambda module: module.__name__)
def test_ordinary_code_is_left_alone(package: object) -> None:
    """Real code (a library installed here) keeps nearly every line: secrets-shaped lines are rare."""
    lines = changed = 0
    for path in sorted(Path(package.__file__).parent.rglob("*.py")):  # type: ignore[attr-defined]
        text = path.read_text(encoding="utf-8")
        original, cleaned = text.split("\n"), redact(text).split("\n")
        lines += len(original)
        changed += sum(1 for a, b in zip(original, cleaned) if a != b) + abs(len(original) - len(cleaned))
    assert lines > 5000
    # httpx's own URL tests and docs hold example credentials ("user:a secret@…"); a few lines.
    assert changed / lines < 0.001, (changed, lines)


def test_placeholders_do_not_trip_the_rulesets() -> None:
    placeholders = " ".join(f"<redacted:{kind}>" for _, kind in SECRETS.values())
    line = f'token = "<redacted:secret>"; url = "postgres://u:<redacted:password>@h"; {placeholders}'
    assert redact(line) == line
    assert re.search(r"<redacted:[a-z0-9-]+>", redact("password = 'hunter2hunter2'"))


def test_detect_secrets_is_imported_only_when_a_prompt_is_built() -> None:
    probe = ("import sys, covgen.cli, covgen.config, covgen.engines.llm, covgen.redact, covgen.gaps; "
             "assert 'detect_secrets' not in sys.modules; covgen.redact.redact('x'); assert 'detect_secrets' in sys.modules")
    subprocess.run([sys.executable, "-c", probe], check=True)
