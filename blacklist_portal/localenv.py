"""First-run secrets for the embedded default.

Production reads every secret from the environment. On a newcomer's laptop there is no
environment to speak of, so the first `manage.py` or Celery start writes random keys into
`var/.env` (git-ignored) and every later start reads the same file. Production settings never
call this.
"""

import base64
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def ensure_local_env() -> None:
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    if not settings_module.endswith(".base") or "SECRET_KEY" in os.environ:
        return
    var_dir = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
    env_file = var_dir / ".env"
    if env_file.exists():
        return
    var_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Generated on first run for the embedded default. Never commit; never use in production.",
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
        f"FIELD_ENCRYPTION_KEYS=k1:{_new_key()}",
        f"BLIND_INDEX_KEY={_new_key()}",
    ]
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
