"""Public paths and per-prefix scopes: parsed once, and closed on paths a lenient router might read otherwise."""

from __future__ import annotations

import pytest

from frontdesk.middleware.paths import PathRules, token_scopes


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/", True),
        ("/me", False),  # "/" is the home page only, never everything
        ("/assets/app.js", True),
        ("/assets", False),
        ("/health", True),
        ("/health/live", True),
        ("/healthz", False),
        ("/assets/../admin", False),
        ("/assets/./x", False),
        ("//assets/x", False),
        ("/assets\\..\\admin", False),
    ],
)
def test_public_paths(path: str, public: bool) -> None:
    rules = PathRules.build(["/", "/assets/", "/health"])
    assert rules.is_public(path) is public


def test_scope_rules_longest_prefix_wins_and_resolve_dot_segments() -> None:
    rules = PathRules.build(scopes={"/admin/": "admin", "/admin/audit/": ["admin", "audit"], "/api/items": "items"})
    assert rules.required_scopes("/admin/users") == {"admin"}
    assert rules.required_scopes("/admin") == {"admin"}
    assert rules.required_scopes("/admin/audit/log") == {"admin", "audit"}
    assert rules.required_scopes("/public/../admin/audit/log") == {"admin", "audit"}
    assert rules.required_scopes("//admin//users") == {"admin"}
    assert rules.required_scopes("/api/items/3") == {"items"}
    assert rules.required_scopes("/api/itemsx") == frozenset()


def test_rules_must_be_absolute_paths() -> None:
    with pytest.raises(ValueError, match="must start with /"):
        PathRules.build(["assets/"])


def test_token_scopes_from_scope_or_scp() -> None:
    assert token_scopes({"scope": "a b"}) == {"a", "b"}
    assert token_scopes({"scp": ["a", 3, "c"]}) == {"a", "c"}
    assert token_scopes({"scope": 5}) == frozenset()
