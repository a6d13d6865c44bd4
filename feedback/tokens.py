"""Personal link tokens: unguessable, letters and digits only, stored as hashes."""

import hashlib
import hmac
import secrets
import string

ALPHABET = string.digits + string.ascii_letters
# 62**22 is about 2**131: more than 128 bits, and safe to split across SMS lines.
LENGTH = 22


def new_nonce() -> bytes:
    """Return the random seed of one invitation's tokens (128 bits from secrets)."""
    return secrets.token_bytes(16)


def derive(secret_key: str, nonce: bytes, purpose: str = "survey") -> str:
    """Return the token for this nonce and purpose; only the secret key can make it."""
    mac = hmac.new(secret_key.encode(), purpose.encode() + b":" + nonce, "sha256")
    number = int.from_bytes(mac.digest(), "big")
    chars = []
    for _ in range(LENGTH):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)


def digest(token: str) -> str:
    """Return the hash under which a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_key() -> str:
    """Return a new API key for the Authorization header."""
    return "fbk_" + secrets.token_urlsafe(32)


def looks_like_token(value: str) -> bool:
    """Say whether a path segment could be a token, before touching the database."""
    return len(value) == LENGTH and all(char in ALPHABET for char in value)
