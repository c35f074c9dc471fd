"""The repository stands on its own: no file points at something only another machine has.

Someone who clones the repository has nothing else, so every file git tracks (`git ls-files`;
where git or a git work tree is missing, the tree itself minus .git, .venv, .herald, build output
and tool caches) is read as UTF-8 text (a file that is not UTF-8 text is skipped), and each line
is held to three rules:

1. **Named references.** No line names the team's folder beside the checkout (`OUTSIDE`),
   `shared/DESIGN`, `DESIGN.md`,
   `CELERY-NOTES`, `seeds/` or `DESIGN contract` (the paths compared case-blind; `DESIGN.md` and
   `DESIGN contract` as written, since prose may speak of a design contract). These are the
   team's notes and the vendors' documents as kept outside the repository; docs/design.md and
   docs/vendors.md say in the repository what they said.
2. **Relative paths that climb.** A path that contains `../` (a run of letters, digits and
   `_.~/-` characters) must, resolved from the folder of the file that writes it, name a file or
   a folder of the repository: `../design.md` in docs/vendors.md passes, `OUTSIDE + "/x"` fails
   everywhere, and so does `../../x` written at the top. A path that starts with `/` falls under
   rule 3 instead, and a bare `..` (as in `"$(dirname "$0")/.."`) names nothing to check.
3. **Absolute paths into someone's machine.** A path that starts at the root with `/home`,
   `/Users`, `/root`, `/work`, `/workspace`, `/mnt` or `/media` is refused: that is where people's
   and machines' own files live, and no other checkout has them. System places every host or
   container has (`/etc`, `/usr`, `/var`, `/tmp`, `/dev`, `/opt`, ...) are allowed: the CI script
   starts PostgreSQL from /etc/postgresql, compose keeps beat's schedule in /tmp. URL paths such
   as /v1/sms or /smsApi/group start with none of the refused names, and a path inside a URL
   (`https://host/home/x`) is not at a root: a match must not follow a letter, digit, `_`, `.`,
   `-`, `~` or `:/`.

A line of test data that needs such a path (a path-traversal probe, say) may carry the marker
`self-contained: allowed`; this file, which has to spell the rules out, is the only file skipped.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()
ALLOWED_MARKER = "self-contained: allowed"
SKIPPED_FOLDERS = {
    ".git",
    ".venv",
    ".herald",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "build",
    "dist",
}

OUTSIDE = ".." + "/" + "shared"
"""The team's folder beside a checkout, spelled in pieces so that this file names it nowhere."""
NAMED = re.compile(
    r"(?i:" + re.escape(OUTSIDE) + r"|shared/DESIGN|CELERY-NOTES|seeds/)|DESIGN\.md|DESIGN contract"
)
CLIMBING = re.compile(r"[\w.~/-]*\.\./[\w.~/-]*")
OUTSIDE_ROOTS = ("home", "Users", "root", "work", "workspace", "mnt", "media")
ABSOLUTE = re.compile(r"(?<![\w.~-])(?<!:/)/(?:" + "|".join(OUTSIDE_ROOTS) + r")(?=/|\b)")


def repository_files() -> list[str]:
    """Paths relative to the root, with `/` separators: what git tracks, else the tree."""
    git = shutil.which("git")
    if git is not None:
        listed = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
        if listed.returncode == 0 and listed.stdout:
            return sorted(p for p in listed.stdout.decode("utf-8").split("\0") if p)
    return walked_files()


def walked_files() -> list[str]:
    found: list[str] = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [
            s for s in subfolders if s not in SKIPPED_FOLDERS and not s.endswith(".egg-info")
        ]
        for name in names:
            if name == ".git":
                continue  # in a linked work tree .git is a file naming the main checkout
            found.append((Path(folder) / name).relative_to(ROOT).as_posix())
    return sorted(found)


def with_folders(files: Iterable[str]) -> set[str]:
    """The files and every folder above them: what a climbing path may name."""
    known: set[str] = set()
    for path in files:
        parts = path.split("/")
        known.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return known


def problems_in_line(path: str, line: str, known: set[str]) -> list[str]:
    """What in one line of `path` points outside the repository (the rules above)."""
    if ALLOWED_MARKER in line:
        return []
    problems = [f"names {m.group(0)!r}" for m in NAMED.finditer(line)]
    folder = posixpath.dirname(path)
    for match in CLIMBING.finditer(line):
        target = match.group(0)
        if target.endswith(".") and not target.endswith(".."):
            target = target[:-1]  # the full stop of a sentence
        if target.startswith("/"):
            continue
        resolved = posixpath.normpath(posixpath.join(folder, target))
        if resolved == ".." or resolved.startswith("../"):
            problems.append(f"{target!r} climbs out of the repository")
        elif resolved.rstrip("/") not in known:
            problems.append(f"{target!r} names nothing in the repository")
    problems += [f"absolute path {m.group(0)!r}" for m in ABSOLUTE.finditer(line)]
    return problems


def text_of(path: str) -> str | None:
    try:
        data = (ROOT / path).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None  # listed by git but deleted in the work tree, or a submodule
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_file_points_outside_the_repository() -> None:
    files = repository_files()
    assert {"README.md", "pyproject.toml"} <= set(files), "the file list is wrong"
    known = with_folders(files)
    found: list[str] = []
    for path in files:
        if path == THIS_FILE:
            continue
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.split("\n"), start=1):
            found += [f"{path}:{number}: {p}" for p in problems_in_line(path, line, known)]

    assert not found, "pointers outside the repository:\n" + "\n".join(found)


def test_without_git_the_tree_itself_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    tracked = {p for p in repository_files() if (ROOT / p).is_file()}
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    walked = repository_files()

    assert tracked <= set(walked)
    assert not [p for p in walked if SKIPPED_FOLDERS & set(p.split("/"))]


KNOWN = with_folders(["README.md", "docs/design.md", "docs/vendors.md", "worker/app.py"])


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("README.md", f"The promises are in `{OUTSIDE}/DESIGN.md`."),
        ("worker/app.py", f"Why each setting (see {OUTSIDE}/CELERY-NOTES.md §2):"),
        ("worker/vendors/veesing.py", f"Read beside {OUTSIDE}/seeds/001_01c549922083414d.txt."),
        ("docs/vendors.md", "One section per vendor document in `seeds/` (see `seeds/INDEX.md`)."),
        ("worker/limits.py", '"""The vendors\' rules (DESIGN contract 3).'),
        ("worker/app.py", "See DESIGN.md."),
        ("worker/app.py", "as the notes say (celery-notes §6)"),
        ("docs/design.md", "[notes](../../notes.md)"),
        ("README.md", "[elsewhere](../herald-notes/plan.md)"),
        ("worker/app.py", "see ../docs/missing.md"),
        ("tests/x.py", 'open("/home/alice/herald/settings.env")'),
        ("README.md", "cd /work/main && bash .ci/run"),
        ("README.md", "file:///Users/alice/herald/README.md"),
    ],
)
def test_the_rules_refuse_pointers_outside(path: str, line: str) -> None:
    assert problems_in_line(path, line, KNOWN)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("docs/vendors.md", "the simulator of [design.md](design.md) or [README](../README.md)"),
        ("worker/app.py", "see ../docs/design.md, promise 2"),
        ("docs/design.md", "The README (../README.md). The docs (../docs/)."),
        (".ci/run", 'cd "$(dirname "$0")/.."'),
        (".ci/run", "    for version in /etc/postgresql/*; do"),
        ("compose.yaml", '"--schedule", "/tmp/celerybeat-schedule"]'),
        ("compose.yaml", 'volumes: ["postgres-data:/var/lib/postgresql/data"]'),
        (".ci/run", "#!/usr/bin/env bash"),
        ("README.md", "| `POST /v1/sms` | `GET /v1/messages/{id}` | `/callbacks/veesing/sms/` |"),
        ("docs/sandbox.md", "| Veesing SMS | `/smsApi/group`, `/smsApi/group/getBalance` | POST |"),
        ("README.md", "https://example.com/home/index.html and http://work/x"),
        ("worker/store.py", "a design contract between us and the vendor"),
        ("worker/limits.py", "a day's counters only count once the day is *seeded*"),
        ("tests/x.py", 'probe = "/_sandbox/../../etc/passwd"'),
        ("tests/x.py", 'probe = "../../../etc/passwd"  # self-contained: allowed'),
    ],
)
def test_the_rules_let_paths_inside_or_on_every_host_pass(path: str, line: str) -> None:
    assert problems_in_line(path, line, KNOWN) == []
