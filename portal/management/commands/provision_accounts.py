"""`manage.py provision_accounts`: the nightly job's provisioning step, by hand.

Creates the parent and student accounts the roster calls for, queues one welcome email per new
parent (bulk stream) and prints counts per outcome, including why guardians were left out.
Running it again sends nothing twice. The last line, `elapsed_seconds=<s>`, is the run's own
time (Django start-up excluded).
"""

from django.core.management.base import BaseCommand

from portal.provisioning import provision_accounts


class Command(BaseCommand):
    help = "Create portal accounts for eligible guardians and students; queue welcome emails."

    def handle(self, *args, **options):
        summary = provision_accounts()
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(f"elapsed_seconds={summary.seconds:.3f}")
