"""Webhook secrets and Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is `whsec_` + base64 of 32 random bytes, shown once when the endpoint is made
(or the secret rotated). Standard Webhooks signs with the secret itself (HMAC-SHA256),
so it cannot be stored as a hash: it is stored encrypted with Fernet under a key derived
from WEBHOOK_SECRET_KEY (default: SECRET_KEY; changing it makes stored secrets
unreadable — rotate the endpoints' secrets after changing it)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from standardwebhooks import Webhook

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _fernet() -> Fernet:
    # Imported here: cryptography costs ~50 ms of every manage.py start-up otherwise.
    from cryptography.fernet import Fernet

    material = (getattr(settings, "WEBHOOK_SECRET_KEY", "") or settings.SECRET_KEY).encode()
    key = hashlib.sha256(b"storyhub-webhook-secrets:" + material).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def signed_headers(*, secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` (the exact bytes sent)."""
    signature = Webhook(secret).sign(message_id, timestamp, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
