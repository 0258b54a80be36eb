"""The repository's own documents: every citation of a step of ``docs/algorithm.md`` names a section it has."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALGORITHM = ROOT / "docs" / "algorithm.md"
#: A citation: ``algorithm.md §6.2``, or a range such as ``§2-§3`` / ``§2-3``.
CITATION = re.compile(r"algorithm\.md §(\d+(?:\.\d+)?)(?:-§?(\d+(?:\.\d+)?))?")
#: A section heading: ``## 6. Compression``, ``### 6.2 Quantisation-aware training``.
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", re.MULTILINE)


def cited_sections(text):
    """Every section number ``text`` cites in docs/algorithm.md, a range's ends included."""
    return {number for match in CITATION.finditer(text) for number in match.groups() if number}


def test_every_citation_of_a_step_names_a_section_of_the_algorithm():
    sections = set(HEADING.findall(ALGORITHM.read_text()))
    assert {"1", "2", "3", "4", "5", "6", "6.1", "6.2", "6.3", "7"} <= sections
    files = [path for folder in ("gi_numba", "cli", "tests", "benchmarks", "docs")
             for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".md")] + [ROOT / "README.md"]
    cited = {path.relative_to(ROOT).as_posix(): cited_sections(path.read_text()) for path in files}
    assert sum(map(len, cited.values())) > 40  # the docstrings do cite it
    missing = {path: sorted(numbers - sections) for path, numbers in cited.items() if numbers - sections}
    assert not missing, f"citations of sections docs/algorithm.md does not have: {missing}"


def test_the_citation_pattern_reads_ranges_and_subsections():
    assert cited_sections("(docs/algorithm.md §2-§3), algorithm.md §6.2 and algorithm.md §4-6.") == {
        "2", "3", "6.2", "4", "6"}
    assert cited_sections("the PNG specification §9") == set()
