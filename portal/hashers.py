from django.contrib.auth.hashers import Argon2PasswordHasher


class FastTestArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with a tiny memory cost: the test suite only, never production."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1
