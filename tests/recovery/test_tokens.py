"""Tokens: signed random ids; a ledger makes them single-use and revocable (C1-C9)."""

import pytest

from recovery import tokens
from recovery.models import IssuedToken

pytestmark = pytest.mark.django_db

RESET = IssuedToken.Purpose.RESET


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="parent1", email="p1@example.org")


def test_round_trip(user):
    token = tokens.mint(user=user, purpose=RESET)
    assert tokens.check(token, purpose=RESET).user == user
    assert tokens.consume(token, purpose=RESET) == user
    with pytest.raises(tokens.TokenUsed):
        tokens.consume(token, purpose=RESET)
