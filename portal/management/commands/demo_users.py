from django.core.management.base import BaseCommand

from portal.demo import demo_users_ensure


class Command(BaseCommand):
    help = "Create one demo user per role and print their logins (local demo only)."

    def handle(self, *args, **options):
        logins = demo_users_ensure()
        self.stdout.write("Demo logins (local demo only):")
        for username, password in logins.items():
            self.stdout.write(f"  {username:<24} {password}")
