"""Feedback tokens: what a browser holds to give feedback on one run and key without a
credential. HS256 JWTs signed with the server's key (purpose "feedback-token"), naming
the org, the run, the run's creator, the key, an expiry and an id; single-use unless the
token says `multi`."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from tenantgraph.errors import Forbidden
from tenantgraph.secret_key import SecretKey

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "KEY_PATTERN",
    "PURPOSE",
    "FeedbackClaims",
    "FeedbackTokens",
    "InvalidToken",
]

PURPOSE = "feedback-token"
# A feedback key ("thumbs", "correct", …): what the feedback table accepts.
KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
DEFAULT_TTL_SECONDS = 7 * 24 * 3600
_ALGORITHM = "HS256"
_REQUIRED = ["org", "run", "sub", "key", "exp", "jti"]


class InvalidToken(Forbidden):
    """A feedback token that is forged, expired or malformed (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class FeedbackClaims:
    org_id: str
    run_id: uuid.UUID
    user_id: str  # the run's creator: the feedback is recorded as theirs
    key: str
    jti: str
    multi: bool


class FeedbackTokens:
    """Issues and verifies feedback tokens with one key derived from the server's key."""

    def __init__(self, secret_key: SecretKey, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self._key = secret_key.derive(PURPOSE)
        self.ttl_seconds = ttl_seconds

    def issue(
        self, org_id: str, run_id: uuid.UUID, user_id: str, keys: list[str]
    ) -> dict[str, str]:
        """One token per key for the run `user_id` creates."""
        exp = int(time.time()) + self.ttl_seconds
        return {
            key: jwt.encode(
                {
                    "org": org_id,
                    "run": str(run_id),
                    "sub": user_id,
                    "key": key,
                    "exp": exp,
                    "jti": uuid.uuid4().hex,
                },
                self._key,
                algorithm=_ALGORITHM,
            )
            for key in dict.fromkeys(keys)
        }

    def verify(self, token: str) -> FeedbackClaims:
        """The token's claims; InvalidToken when its signature, expiry or shape is wrong."""
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[_ALGORITHM], options={"require": _REQUIRED}
            )
            return FeedbackClaims(
                org_id=str(claims["org"]),
                run_id=uuid.UUID(str(claims["run"])),
                user_id=str(claims["sub"]),
                key=str(claims["key"]),
                jti=str(claims["jti"]),
                multi=claims.get("multi") is True,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("feedback token expired") from None
        except (jwt.InvalidTokenError, ValueError):
            raise InvalidToken("invalid feedback token") from None
