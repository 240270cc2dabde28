"""docs/method.md is the project's own account of the method: every section and label the repository
cites exists there, and nothing points to a document outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHOD = ROOT / "docs" / "method.md"

_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", "build", "dist", "out", "node_modules"}
_MAX_BYTES = 2_000_000

# What a citation of the outside design document looks like (spelled in pieces so this file is clean).
_OUTSIDE = [
    re.compile(re.escape("shared" + "/design")),
    re.compile(re.escape("sape-" + "method.md")),
    re.compile(r"\bspec\s*" + "\u00a7", re.IGNORECASE),
    re.compile(r"\bspec(?:'s)?\s+[BD]\d+\b", re.IGNORECASE),
]

_HEADING = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
_LABEL_DEFINITION = re.compile(r"^\*\s+\*\*([BD]\d+)\b", re.MULTILINE)
_CITED_FILE = re.compile(r"method\.md")
# After ``method.md``: sections (``§6.3``), labels (``D2``), lists and ranges of them (``§4, §5``, ``B3-B6``).
_TOKEN = re.compile(
    r"\s*(?:(?P<sep>[`(,;]|and\b|or\b)"
    r"|(?P<section>\u00a7\s*\d+(?:\.\d+)*)"
    r"|(?P<label>[BD]\d+\b)"
    r"|(?P<range>[-\u2013]\s*(?:\u00a7\s*)?[BD]?\d+(?:\.\d+)*\b))"
)


def _repo_files() -> list[Path]:
    """Files of the checkout: tracked and untracked-but-not-ignored (every file when git is missing)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        paths = [ROOT / name for name in out.decode("utf-8", "replace").split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        paths = [
            p
            for p in ROOT.rglob("*")
            if not any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)
        ]
    return sorted(p for p in paths if p.is_file())


def _text_files() -> dict[str, str]:
    """Relative path -> text for every UTF-8 text file of the checkout (binary files skipped)."""
    texts = {}
    for path in _repo_files():
        try:
            if path.stat().st_size > _MAX_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data:
            continue
        try:
            texts[path.relative_to(ROOT).as_posix()] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def citations(text: str) -> list[tuple[str, str]]:
    """Every ``("section", "6.3")`` / ``("label", "B7")`` cited right after a mention of ``method.md``.

    Both ends of a range are returned (``B3-B6`` gives B3 and B6, ``§4-5`` gives 4 and 5).
    """
    found: list[tuple[str, str]] = []
    for mention in _CITED_FILE.finditer(text):
        pos, kind = mention.end(), None
        while (token := _TOKEN.match(text, pos)) is not None and token.end() > pos:
            pos = token.end()
            if token.group("section"):
                kind = "section"
                found.append((kind, re.search(r"\d+(?:\.\d+)*", token.group("section")).group()))
            elif token.group("label"):
                kind = "label"
                found.append((kind, token.group("label")))
            elif token.group("range") and kind is not None:
                end = re.sub(r"^[-\u2013\s\u00a7]*", "", token.group("range"))
                if kind == "label" and end[:1] not in ("B", "D"):
                    end = found[-1][1][0] + end
                found.append((kind, end))
    return found


def _method_text() -> str:
    return METHOD.read_text(encoding="utf-8")


def test_citation_parser():
    text = "see docs/method.md §4, §5.2 and B3-B6 (fix of docs/method.md B7); ``docs/method.md`` (§7). method.md §x"
    assert citations(text) == [
        ("section", "4"),
        ("section", "5.2"),
        ("label", "B3"),
        ("label", "B6"),
        ("label", "B7"),
        ("section", "7"),
    ]
    assert citations("(docs/method.md §6.4: at most 1000)") == [("section", "6.4")]
    assert citations("docs/method.md §4-5, D2") == [("section", "4"), ("section", "5"), ("label", "D2")]


def test_method_sections_are_numbered_and_unique():
    numbers = _HEADING.findall(_method_text())
    assert len(numbers) == len(set(numbers)), "a section number is used twice in docs/method.md"
    for expected in ("5.2", "5.5", "5.7", "6.3", "6.4", "7", "9"):
        assert expected in numbers, f"docs/method.md has no section {expected}"


def test_difference_labels_are_defined_once():
    labels = _LABEL_DEFINITION.findall(_method_text())
    assert len(labels) == len(set(labels)), "a difference label is defined twice in docs/method.md"
    for prefix in ("B", "D"):
        numbers = sorted(int(label[1:]) for label in labels if label[0] == prefix)
        assert numbers == list(range(1, len(numbers) + 1)), f"{prefix} labels are not numbered 1..n: {numbers}"


def test_every_cited_section_and_label_exists():
    text = _method_text()
    sections = set(_HEADING.findall(text))
    labels = set(_LABEL_DEFINITION.findall(text))
    missing, count = [], 0
    for name, content in _text_files().items():
        for kind, value in citations(content):
            count += 1
            if value not in (sections if kind == "section" else labels):
                missing.append(f"{name}: {'§' if kind == 'section' else ''}{value}")
    assert not missing, "cited but not in docs/method.md:\n" + "\n".join(sorted(set(missing)))
    assert count >= 50, f"only {count} citations of docs/method.md found: is the scan still reading the code?"


def test_nothing_cites_the_outside_design_document():
    offending = []
    for name, content in _text_files().items():
        for number, line in enumerate(content.splitlines(), 1):
            if any(pattern.search(line) for pattern in _OUTSIDE):
                offending.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not offending, "cite docs/method.md instead:\n" + "\n".join(offending)


def test_readme_results_and_results_md_are_what_the_generator_writes():
    """README's Results section and RESULTS.md come from benchmarks/results/*/table.md, never typed by hand:
    `python benchmarks/run_experiments.py readme --write-readme` regenerates both."""
    import importlib.util

    path = ROOT / "benchmarks" / "run_experiments.py"
    spec = importlib.util.spec_from_file_location("run_experiments", path)
    generator = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(generator)
    finally:
        sys.path.remove(str(path.parent))
    results = ROOT / "benchmarks" / "results"
    text = generator.results_text(results)
    _, body, _ = generator.readme_results((ROOT / "README.md").read_text())
    assert body == text, "README's Results differ from the tables: run run_experiments.py readme --write-readme"
    assert (results / "RESULTS.md").read_text() == generator.results_file_text(text)
