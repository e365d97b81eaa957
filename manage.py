#!/usr/bin/env python
import os
import sys

# Commands that must not start the embedded PostgreSQL and Redis.
WITHOUT_SERVICES = {"stop_services", "help", "version", "--help", "-h", "--version"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
    from django.core.management import execute_from_command_line

    if len(sys.argv) > 1 and sys.argv[1] not in WITHOUT_SERVICES:
        # The settings only say where the embedded servers are; commands that need them start them here.
        from prc_site.lib.embedded import start_configured

        start_configured()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
