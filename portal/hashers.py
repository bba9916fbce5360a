"""Password hashers: Argon2id with parameters chosen for small web hosts."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class PortalArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).

    Django's default (100 MiB, 8 lanes) costs about half a second per login on a 2-core host,
    and login runs the hasher on every attempt, known account or not (equal timing), so it
    would cap a district's logins at a few per second and hand attackers a cheap way to load
    the servers. The algorithm name stays "argon2", so existing hashes verify and are
    upgraded to these parameters at the next login.
    """

    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1


class FastTestArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with a tiny memory cost: the test suite only, never production."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1
