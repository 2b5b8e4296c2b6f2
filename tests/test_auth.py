"""Bearer JWT verification: RS256/ES256 against configured keys or a JWKS URL, HS256 for development."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.auth import (
    format_owner_credential,
    mint_token,
    new_owner_credential,
    parse_owner_credential,
    verify_jwt,
)
from shared.errors import Problem
from shared.settings import Settings
from tests.support import jwk, jwks_issuer

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "alice",
        "role": "investigator",
        "agency": "mke",
        "iss": "canvass-dev",
        "aud": "canvass",
        "iat": now,
        "exp": now + 300,
    }
    base.update(over)
    return base


def test_rs256_and_es256_tokens_verify_against_configured_public_keys() -> None:
    s = Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY) + pem(EC_KEY))
    rs = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    es = jwt.encode(claims(role="supervisor"), EC_KEY, algorithm="ES256")
    assert verify_jwt(rs, s).roles == {"investigator"}
    p = verify_jwt(es, s)
    assert (p.sub, p.agency, p.roles) == ("alice", "mke", frozenset({"supervisor"}))


def test_token_signed_by_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    s = Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY))
    with pytest.raises(Problem) as err:
        verify_jwt(jwt.encode(claims(), other, algorithm="RS256"), s)
    assert err.value.status == 401


@pytest.mark.parametrize(
    "bad",
    [
        claims(exp=int(time.time()) - 3600),
        claims(aud="someone-else"),
        {k: v for k, v in claims().items() if k != "exp"},
    ],
    ids=["expired", "wrong-audience", "no-expiry"],
)
def test_expired_misaddressed_or_unbounded_tokens_are_refused(bad: dict[str, Any]) -> None:
    s = Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY))
    with pytest.raises(Problem) as err:
        verify_jwt(jwt.encode(bad, RSA_KEY, algorithm="RS256"), s)
    assert err.value.status == 401


def test_unsigned_tokens_and_disabled_hs256_are_refused() -> None:
    unsigned = jwt.encode(claims(), key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(Problem):
        verify_jwt(unsigned, Settings())
    dev = mint_token("investigator", "mke")
    assert verify_jwt(dev, Settings()).agency == "mke"
    with pytest.raises(Problem):
        verify_jwt(dev, Settings(CANVASS_ALLOW_HS256=False))


@pytest.mark.parametrize(
    "over",
    [{"sub": "inv\x00"}, {"sub": "\ud800"}, {"sub": "a\nb"}, {"sub": "x" * 256}, {"agency": "mke\x00"}],
)
def test_a_token_whose_sub_or_agency_is_not_printable_text_is_refused(over: dict[str, Any]) -> None:
    """Those claims are written into audit records and compared in SQL, which cannot hold a NUL."""
    token = mint_token("investigator", "mke", extra=over)
    with pytest.raises(Problem) as refused:
        verify_jwt(token, Settings())
    assert refused.value.status == 401


def test_unknown_roles_grant_nothing() -> None:
    p = verify_jwt(mint_token("superuser", "mke"), Settings())
    assert p.roles == frozenset()


@pytest.fixture
def jwks_url() -> Iterator[str]:
    with jwks_issuer([jwk(RSA_KEY, "k1")]) as issuer:
        yield issuer.url


def test_rs256_token_verifies_against_a_jwks_url(jwks_url: str) -> None:
    s = Settings(CANVASS_JWKS_URL=jwks_url)
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "k1"})
    assert verify_jwt(token, s).sub == "alice"


def test_owner_credentials_round_trip_and_reject_garbage() -> None:
    import uuid

    cred = new_owner_credential(uuid.uuid4())
    assert parse_owner_credential(format_owner_credential(cred)) == cred
    for junk in ["cvo_", "cvo_nothex_secret", "Bearer x", "cvo_" + "0" * 32, "eyJhbGciOi..."]:
        assert parse_owner_credential(junk) is None


def test_asymmetric_tokens_must_come_from_an_accepted_issuer() -> None:
    s = Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY))
    for bad in (claims(iss="https://evil.example"), {k: v for k, v in claims().items() if k != "iss"}):
        with pytest.raises(Problem) as err:
            verify_jwt(jwt.encode(bad, RSA_KEY, algorithm="RS256"), s)
        assert err.value.status == 401


STATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_an_identity_provider_speaks_only_for_its_own_agencies() -> None:
    issuers = {"https://idp.mke.example": ["mke"], "https://idp.state.example": ["*"]}
    s = Settings(
        CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY),
        CANVASS_JWT_ISSUERS=issuers,
        CANVASS_JWT_ISSUER_KEYS={"https://idp.state.example": pem(STATE_KEY)},
    )
    mke = jwt.encode(claims(iss="https://idp.mke.example"), RSA_KEY, algorithm="RS256")
    assert verify_jwt(mke, s).agency == "mke"
    other = jwt.encode(
        claims(iss="https://idp.mke.example", agency="dallas-pd", role="agency_admin"), RSA_KEY, "RS256"
    )
    with pytest.raises(Problem, match="does not speak for"):
        verify_jwt(other, s)
    state = jwt.encode(
        claims(iss="https://idp.state.example", agency="dallas-pd"), STATE_KEY, algorithm="RS256"
    )
    assert verify_jwt(state, s).agency == "dallas-pd"


def test_a_key_of_one_identity_provider_never_signs_for_another() -> None:
    """Two agencies' providers, each with its own keys: a token signed by one naming the other (its issuer, its
    agency) is refused, whichever way round."""
    issuers = {"https://idp.metro.example": ["metro"], "https://idp.county.example": ["county"]}
    s = Settings(
        CANVASS_JWT_ISSUERS=issuers,
        CANVASS_JWT_ISSUER_KEYS={
            "https://idp.metro.example": pem(RSA_KEY),
            "https://idp.county.example": pem(STATE_KEY),
        },
    )
    for key, own, other in (
        (RSA_KEY, ("https://idp.metro.example", "metro"), ("https://idp.county.example", "county")),
        (STATE_KEY, ("https://idp.county.example", "county"), ("https://idp.metro.example", "metro")),
    ):
        good = jwt.encode(claims(iss=own[0], agency=own[1]), key, algorithm="RS256")
        assert verify_jwt(good, s).agency == own[1]
        forged = jwt.encode(claims(iss=other[0], agency=other[1], role="agency_admin"), key, "RS256")
        with pytest.raises(Problem) as err:
            verify_jwt(forged, s)
        assert err.value.status == 401


def test_issuers_may_not_share_the_configured_keys() -> None:
    issuers = {"https://idp.metro.example": ["metro"], "https://idp.county.example": ["county"]}
    with pytest.raises(ValueError, match="would share the keys"):
        Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY), CANVASS_JWT_ISSUERS=issuers)
    with pytest.raises(ValueError, match="would share the keys"):
        Settings(CANVASS_JWKS_URL="https://idp.metro.example/jwks", CANVASS_JWT_ISSUERS=issuers)
    with pytest.raises(ValueError, match="does not accept"):
        Settings(CANVASS_JWT_ISSUER_KEYS={"https://idp.elsewhere.example": pem(RSA_KEY)})
    # One issuer on the configured keys, the other on its own: fine.
    Settings(
        CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY),
        CANVASS_JWT_ISSUERS=issuers,
        CANVASS_JWT_ISSUER_KEYS={"https://idp.county.example": pem(STATE_KEY)},
    )


def test_only_canvass_services_act_as_service() -> None:
    s = Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY))
    from_idp = jwt.encode(claims(role="service"), RSA_KEY, algorithm="RS256")
    assert verify_jwt(from_idp, s).roles == frozenset()
    internal = mint_token("service", None, sub="requests_api")
    assert verify_jwt(internal, Settings()).roles == {"service"}


def test_in_production_the_shared_secret_mints_only_service_tokens() -> None:
    prod = Settings(
        CANVASS_ENV="production",
        CANVASS_SECRET_KEY="s" * 40,
        CANVASS_ENCRYPTION_KEY="k1:" + "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=",
        CANVASS_PUBLIC_BASE_URL="https://canvass.example.gov",
        CANVASS_KEYSTORE_URL="postgresql://keys@keystore/canvass_keys",
        CANVASS_KEYSTORE_KEY="w1:" + "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6eno=",
    )
    with pytest.raises(Problem, match="identity provider"):
        verify_jwt(mint_token("agency_admin", "mke", settings=prod), prod)
    assert verify_jwt(mint_token("service", None, settings=prod), prod).roles == {"service"}


def test_long_lived_tokens_are_refused() -> None:
    s = Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY))
    forever = jwt.encode(claims(exp=int(time.time()) + 3 * 365 * 86400), RSA_KEY, algorithm="RS256")
    with pytest.raises(Problem, match="longer than"):
        verify_jwt(forever, s)


@pytest.mark.parametrize(
    "wrong",
    [
        {"role": 7},
        {"role": ["investigator"]},
        {"agency": ["mke"]},
        {"agency": 42},
        {"roles": [1, 2]},
        {"roles": 3},
    ],
)
def test_a_claim_of_the_wrong_type_is_refused_with_401(wrong: dict[str, Any]) -> None:
    token = jwt.encode(claims(**wrong), RSA_KEY, algorithm="RS256")
    with pytest.raises(Problem, match="wrong type") as caught:
        verify_jwt(token, Settings(CANVASS_JWT_PUBLIC_KEYS=pem(RSA_KEY)))
    assert caught.value.status == 401
