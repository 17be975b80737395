"""The public API is typed end to end: a misspelt option in a user's code is a type error, not a runtime
surprise (or, worse, silently ignored)."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

import frontdesk

CHECKOUT = Path(__file__).resolve().parents[2]

USER_CODE = """
from frontdesk import SessionAuth, User


async def check(username: str, password: str) -> User | None:
    return None


auth = SessionAuth.from_secrets(
    access_secret="a" * 40,
    refresh_secret="r" * 40,
    authenticator=check,
    store="memory://",
    {options}
)
"""

GOOD_OPTIONS = (
    'public_paths=["/", "/assets/"], scopes={"/admin/": "admin"}, csrf_header="x-requested-by", '
    'prefix="/session", origins=["https://app.example"], csrf=True, purge_interval=60.0,'
)
# Each a real slip: a misspelt name, and a right name given the wrong type.
BAD_OPTIONS = {
    "misspelt.py": 'public_path=["/"],',
    "wrong_type.py": "purge_interval=True, csrf_header=7,",
}


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One mypy --strict run over every user file (a cold run costs seconds), its output per file."""
    folder = tmp_path_factory.mktemp("user_code")
    # mypy cannot follow the editable install's import hook; the checkout's frontdesk/ (symlinks to the
    # folders) is what `packages = ["frontdesk"]` type-checks in CI too.
    (folder / "mypy.ini").write_text(f"[mypy]\nstrict = true\nmypy_path = {CHECKOUT}\n")
    files = {"good.py": GOOD_OPTIONS, **BAD_OPTIONS}
    for name, options in files.items():
        (folder / name).write_text(textwrap.dedent(USER_CODE).format(options=options))
    stdout, stderr, _ = mypy_api.run(
        [
            "--config-file",
            str(folder / "mypy.ini"),
            "--cache-dir",
            str(folder / ".mypy_cache"),
            "--no-error-summary",
            *(str(folder / name) for name in files),
        ]
    )
    assert not stderr, stderr
    return {name: "\n".join(line for line in stdout.splitlines() if name in line) for name in files}


def test_correct_session_options_type_check(mypy_report: dict[str, str]) -> None:
    assert mypy_report["good.py"] == ""


def test_a_misspelt_session_option_is_a_type_error(mypy_report: dict[str, str]) -> None:
    assert 'Unexpected keyword argument "public_path"' in mypy_report["misspelt.py"], mypy_report


def test_a_session_option_of_the_wrong_type_is_a_type_error(mypy_report: dict[str, str]) -> None:
    found = mypy_report["wrong_type.py"]
    assert 'Argument "csrf_header"' in found and "int" in found, found


def _public_callables() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in frontdesk.__all__:
        obj = getattr(frontdesk, name)
        if inspect.isclass(obj):
            if not getattr(obj, "_is_protocol", False):  # a Protocol's __init__ is typing's, not ours
                found.append((f"{name}()", obj.__init__))
            for attr, member in vars(obj).items():
                if isinstance(member, classmethod | staticmethod) and not attr.startswith("_"):
                    found.append((f"{name}.{attr}", getattr(obj, attr)))
        elif inspect.isfunction(obj):
            found.append((name, obj))
    return found


def test_no_public_name_takes_untyped_keyword_options() -> None:
    """``**options`` hides every option from type checkers and editors; the facade spells its parameters out."""
    open_ended = [
        label
        for label, func in _public_callables()
        if callable(func)
        and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(func).parameters.values())
    ]
    assert open_ended == []
