"""Demo logins: one user per role, for a local demo only (never in production)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured

from portal.models import UserLegalEntity
from portal.roles import FINANCE, ROLES, STAFF_ROLES

DEMO_LOGINS_FILE = "demo_logins.json"
# Demo users limited to some legal entities (`UserLegalEntity`): username -> (role, entities),
# to show that a user assigned to an entity works only its exception items.
DEMO_SCOPED_USERS = {"demo_finance_gb": (FINANCE, ("LB-GB",))}


def demo_users_ensure(*, var_dir: Path | None = None) -> dict[str, str]:
    """Create (or repair) one demo user per role, and the DEMO_SCOPED_USERS with their legal
    entities; return {username: password}.

    Passwords are random on first creation and kept in var/demo_logins.json (mode 600), so a
    second `make run` prints the same logins. Refuses to run when DEBUG is off. Idempotent.
    """
    if not settings.DEBUG:
        raise ImproperlyConfigured("Demo users are for local demos only (DEBUG is off).")
    path = (var_dir or settings.VAR_DIR) / DEMO_LOGINS_FILE
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    logins: dict[str, str] = {}
    wanted = [(f"demo_{role}", role, ()) for role in ROLES]
    wanted += [(name, role, codes) for name, (role, codes) in DEMO_SCOPED_USERS.items()]
    for username, role, entities in wanted:
        password = known.get(username) or secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username)
        user.first_name = role.replace("_", " ").title()
        user.email = f"{username}@example.invalid"
        # Integration ops edit connections and mapping admins edit mappings in the admin (the
        # browser editors of later issues replace the latter).
        user.is_staff = role in STAFF_ROLES
        if not user.check_password(password):
            user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        UserLegalEntity.objects.filter(user=user).exclude(legal_entity__in=entities).delete()
        for code in entities:
            UserLegalEntity.objects.get_or_create(user=user, legal_entity=code)
        logins[username] = password
    path.write_text(json.dumps(logins, indent=2))
    path.chmod(0o600)
    return logins
