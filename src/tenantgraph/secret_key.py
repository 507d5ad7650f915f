"""The server's secret key (`TENANTGRAPH_SECRET_KEY`): signs what is handed to browsers
(feedback tokens) and encrypts tenants' secrets at rest (channel and webhook secrets).

Each use derives its own key from it (HKDF-SHA256 with the use's name), so a key that signs
tokens never decrypts a stored secret. With an external database the key must be given:
a key generated on one machine would not be known to the others. The embedded default
generates one into the data dir on first start and reuses it.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenantgraph.settings import Settings

__all__ = ["MIN_LENGTH", "InvalidToken", "SecretKey"]

MIN_LENGTH = 32
FILE_NAME = "secret_key"


class SecretKey:
    """Key material and the keys derived from it, one per purpose."""

    def __init__(self, material: str) -> None:
        if len(material) < MIN_LENGTH:
            raise ValueError(f"TENANTGRAPH_SECRET_KEY must be at least {MIN_LENGTH} characters")
        self._material = material.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretKey:
        if settings.secret_key is not None:
            return cls(settings.secret_key.get_secret_value())
        if settings.database_url:
            raise ValueError(
                "TENANTGRAPH_SECRET_KEY is required with an external DATABASE_URL (every "
                "process must share it); generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return cls(_generated(settings.data_dir / FILE_NAME))

    def derive(self, purpose: str) -> bytes:
        """32 bytes for one purpose (e.g. "feedback-token"), stable across restarts."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
        return hkdf.derive(self._material)

    def encrypt(self, purpose: str, plaintext: str) -> str:
        """Authenticated encryption (Fernet) under the purpose's key."""
        return self._fernet(purpose).encrypt(plaintext.encode()).decode()

    def decrypt(self, purpose: str, ciphertext: str) -> str:
        """The plaintext; `InvalidToken` if it was not encrypted here for this purpose."""
        return self._fernet(purpose).decrypt(ciphertext.encode()).decode()

    def _fernet(self, purpose: str) -> Fernet:
        return Fernet(base64.urlsafe_b64encode(self.derive(purpose)))


def _generated(path: Path) -> str:
    """The data dir's key, created once and readable by this user only. It is written to a
    private file first and linked into place, so a process starting at the same moment
    either links its own or reads a whole one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
