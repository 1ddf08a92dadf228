"""Protection of personal numbers at rest: Fernet encryption and keyed fingerprints.

Full card and ID numbers are stored only encrypted; comparisons ("same account as the request?")
use an HMAC fingerprint so the hub never needs to decrypt to decide. Logs and copies use
`contracts.masking`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Any run of 12 or more digits could be a card number (or a mistyped one): keep 6 + 4 digits.
_CARD_RUN = re.compile(r"(?<![0-9])([0-9]{6})([0-9]{2,})([0-9]{4})(?![0-9])")
_ID_RUN = re.compile(r"(?<![0-9])[0-9]{14}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")


class DataProtector:
    """Encrypts and fingerprints personal numbers with the hub's data key(s).

    The first key encrypts; all keys decrypt, so a key can be rotated by putting the new one
    first and re-encrypting old rows in the background.
    """

    @property
    def rotating(self) -> bool:
        """More than one key: tokens under the older ones are to be re-encrypted."""
        return self._older is not None

    def is_current(self, token: str) -> bool:
        """Whether the newest key alone reads the token (no re-encryption needed)."""
        try:
            self._newest.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """The token re-encrypted under the first key (for background re-encryption)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def __init__(self, keys: list[bytes], fingerprint_key: bytes | None = None) -> None:
        if not keys:
            raise ValueError("at least one data key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._newest = Fernet(keys[0])
        self._older = keys[1:] or None
        # Fingerprints must survive a key rotation: the hub keeps its own fingerprint secret
        # (encrypted in the store); without one, the oldest key (last in the list) is the root.
        root = fingerprint_key if fingerprint_key is not None else keys[-1]
        self._mac_key = hashlib.sha256(b"signhub-fingerprint:" + root).digest()

    def encrypt(self, clear: str | bytes) -> str:
        data = clear.encode() if isinstance(clear, str) else clear
        return self._fernet.encrypt(data).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken as exc:
            raise ValueError("a stored value cannot be decrypted with the configured data key") from exc

    def fingerprint(self, clear: str) -> str:
        return hmac.new(self._mac_key, clear.encode(), hashlib.sha256).hexdigest()


def mask_digits_in_text(text: str) -> str:
    """Masks anything that looks like a card or ID number in free text (garbage bodies, errors)."""
    text = _ID_RUN.sub(lambda m: "*" * 14 + m.group(1), text)
    return _CARD_RUN.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def load_or_create_key(configured: str | None, key_file: Path) -> tuple[list[bytes], bool]:
    """The data keys: from configuration (comma-separated, newest first), else a local key file.

    Returns the keys and whether a new key file was created. A development hub without
    SIGNHUB_DATA_KEY still never stores numbers in clear: it makes its own key, readable only
    by its user, beside the store.
    """
    if configured:
        keys = [k.strip().encode() for k in configured.split(",") if k.strip()]
        for number, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(f"SIGNHUB_DATA_KEY: key {number} is not a Fernet key "
                                 "(32 url-safe base64-encoded bytes)") from None  # fmt: skip
        return keys, False
    if key_file.exists():
        return [key_file.read_bytes().strip()], False
    key = Fernet.generate_key()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return [key], True
