import pytest

from tenantgraph.scope import (
    GLOBAL_ASSISTANT,
    MEMORIES,
    PREFERENCES,
    SHARED,
    InvalidIdentifier,
    KeyKind,
    Principal,
    Role,
    memory_namespace,
    org_key_pattern,
    redis_key,
    validate_identifier,
)


@pytest.mark.parametrize(
    "value", ["acme", "user@example", "auth0|123", "a" * 128, "org_1-2:x", "Ünïcode"]
)
def test_valid_identifiers_pass_unchanged(value):
    assert validate_identifier(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "1 to 128"),
        ("a" * 129, "1 to 128"),
        ("has space", "' '"),
        ("tab\there", "'\\t'"),
        ("new\nline", "'\\n'"),
        ("nul\x00", "'\\x00'"),
        ("del\x7f", "'\\x7f'"),
        ("{tag}", "'{'"),
        ("close}", "'}'"),
        ("dotted.id", "'.'"),
    ],
)
def test_invalid_identifiers_name_the_problem(value, reason):
    with pytest.raises(InvalidIdentifier, match="org_id") as info:
        validate_identifier(value, "org_id")
    assert reason in str(info.value)


def test_identifier_must_be_a_string():
    with pytest.raises(InvalidIdentifier, match="must be a string"):
        validate_identifier(42)


def test_principal_validates_and_normalises():
    p = Principal("acme", "alice", "admin", "api_key")
    assert p.role is Role.ADMIN and p.is_admin
    assert not Principal("acme", "bob").is_admin
    with pytest.raises(InvalidIdentifier):
        Principal("ac.me", "alice")
    with pytest.raises(InvalidIdentifier):
        Principal("acme", "")
    with pytest.raises(ValueError, match="superuser"):
        Principal("acme", "alice", "superuser")


def test_principal_is_immutable():
    p = Principal("acme", "alice")
    with pytest.raises(AttributeError):
        p.org_id = "other"  # type: ignore[misc]


def test_role_order():
    assert Role.OWNER.at_least(Role.ADMIN) and Role.ADMIN.at_least(Role.ADMIN)
    assert not Role.MEMBER.at_least(Role.ADMIN)


def test_memory_namespace_follows_the_seed_convention():
    config = {"configurable": {"assistant_id": "a1", "org_id": "ignored", "user_id": "u"}}
    assert memory_namespace(config) == ("a1", MEMORIES)
    assert memory_namespace(config, PREFERENCES) == ("a1", PREFERENCES)
    assert memory_namespace(config, global_assistant=True) == (GLOBAL_ASSISTANT, MEMORIES)
    assert memory_namespace(config, shared=True) == (SHARED, "a1", MEMORIES)


def test_memory_namespace_rejects_unknown_category_and_missing_assistant():
    with pytest.raises(ValueError, match="unknown memory category"):
        memory_namespace({"configurable": {"assistant_id": "a"}}, "gossip")
    with pytest.raises(ValueError, match="assistant_id"):
        memory_namespace({"configurable": {}})


def test_redis_keys_start_with_the_org_hash_tag():
    assert redis_key("acme", KeyKind.RATE_LIMIT, "user", "alice") == "{acme}:rl:user:alice"
    assert redis_key("acme", KeyKind.SESSION_WINDOW, "a1", "u1", "s1") == "{acme}:sw:a1:u1:s1"


def test_redis_key_parts_cannot_forge_segments():
    forged = redis_key("acme", KeyKind.FLAG, "u:1", "50%")
    assert forged == "{acme}:flag:u%3A1:50%25"
    assert redis_key("acme", KeyKind.FLAG, "u", "1") != forged


def test_redis_key_needs_a_valid_org_and_kind():
    with pytest.raises(InvalidIdentifier):
        redis_key("", KeyKind.FLAG, "x")
    with pytest.raises(InvalidIdentifier):
        redis_key("{other}", KeyKind.FLAG, "x")
    with pytest.raises(ValueError):
        redis_key("acme", "not-a-kind", "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier, match="empty"):
        redis_key("acme", KeyKind.FLAG, "")


def test_org_key_pattern_escapes_glob_characters():
    assert org_key_pattern("acme") == "{acme}:*"
    assert org_key_pattern("a*b[c]") == "{a\\*b\\[c\\]}:*"
