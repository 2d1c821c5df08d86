from django.core.management.base import BaseCommand

from portal.demo import DEMO_SCOPED_USERS, demo_users_ensure


class Command(BaseCommand):
    help = "Create one demo user per role and print their logins (local demo only)."

    def handle(self, *args, **options):
        logins = demo_users_ensure()
        self.stdout.write("Demo logins (local demo only):")
        for username, password in logins.items():
            scoped = DEMO_SCOPED_USERS.get(username)
            note = f"  ({scoped[0]}, {', '.join(scoped[1])} only)" if scoped else ""
            self.stdout.write(f"  {username:<24} {password}{note}")
