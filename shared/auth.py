"""Authentication: OAuth2 bearer JWTs from an agency's identity provider, and owners' management credentials.

A JWT is verified against configured public keys (RS256/ES256, PEM) or a JWKS URL; HS256 with the secret key
is accepted for development tokens (`make token`). Claims: `sub`, `role` (or `roles`), `agency` (the agency
slug), `iss`, `aud`, `exp`.

Owners without an account hold a management credential `cvo_<registration id>_<secret>`; only its SHA-256 is
stored. Services look it up by registration id and compare hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Problem
from shared.settings import Settings, get_settings

ROLES = (
    "investigator",
    "supervisor",
    "advocate",
    "agency_admin",
    "integrator",
    "cad",
    "auditor",
    "service",  # another Canvass service acting on its own behalf (e.g. delivering a notification)
)
OWNER_PREFIX = "cvo_"
# The claims that name someone (`sub`, `agency`) are written into audit records and compared in SQL: printable
# text only, so a NUL, a control character or a lone surrogate is refused here rather than failing deeper down.
_NAME_CLAIM = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,255}")

bearer = HTTPBearer(auto_error=False, description="An agency JWT, or an owner's management credential")


@dataclass(frozen=True)
class Principal:
    """An authenticated agency user or machine client."""

    sub: str
    roles: frozenset[str]
    agency: str | None  # agency slug
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # (JWKS URL, key id) when a key of an identity provider's JWKS signed the token: what withdrawing that key
    # from the JWKS reaches (see `key_withdrawn`).
    signed_by: tuple[str, str] | None = field(default=None, compare=False, hash=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


@dataclass(frozen=True)
class OwnerCredential:
    registration_id: uuid.UUID
    secret: str

    @property
    def secret_hash(self) -> bytes:
        return hash_secret(self.secret)


def hash_secret(secret: str) -> bytes:
    # The secret carries 256 random bits, so a fast hash is as strong as a slow one here.
    return hashlib.sha256(secret.encode()).digest()


def new_owner_credential(registration_id: uuid.UUID) -> OwnerCredential:
    return OwnerCredential(registration_id, secrets.token_urlsafe(32))


def format_owner_credential(cred: OwnerCredential) -> str:
    return f"{OWNER_PREFIX}{cred.registration_id.hex}_{cred.secret}"


def parse_owner_credential(token: str) -> OwnerCredential | None:
    if not token.startswith(OWNER_PREFIX):
        return None
    rest = token[len(OWNER_PREFIX) :]
    rid, sep, secret = rest.partition("_")
    if not sep or not secret or len(secret) > 100:
        return None
    try:
        return OwnerCredential(uuid.UUID(hex=rid), secret)
    except ValueError:
        return None


def credential_matches(stored_hash: bytes | None, cred: OwnerCredential) -> bool:
    return stored_hash is not None and hmac.compare_digest(bytes(stored_hash), cred.secret_hash)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="canvass"'})


@lru_cache(maxsize=4)
def _public_keys(spec: str) -> tuple[Any, ...]:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = Path(spec).read_text() if not spec.lstrip().startswith("-----") else spec
    keys = []
    for block in text.split("-----END PUBLIC KEY-----"):
        if "-----BEGIN PUBLIC KEY-----" in block:
            keys.append(load_pem_public_key((block.strip() + "\n-----END PUBLIC KEY-----\n").encode()))
    return tuple(keys)


# How long the key set read from a JWKS URL is used before it is read again. Signing keys are looked up in that
# set (not memoised on their own, which PyJWT's `cache_keys` does for the life of the process): a key the issuer
# withdraws stops verifying tokens, new or already seen, once the set without it has been read.
JWKS_LIFESPAN_S = 300


@lru_cache(maxsize=4)
def jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=False, lifespan=JWKS_LIFESPAN_S)


def verify_jwt(token: str, settings: Settings) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _unauthorized("The bearer token is not a well-formed JWT.") from exc
    alg = header.get("alg")
    options = {"require": ["exp", "sub", "iss"]}
    common: dict[str, Any] = {"audience": settings.jwt_audience, "options": options, "leeway": 30}
    try:
        if alg == "HS256" and settings.allow_hs256:
            claims = jwt.decode(
                token, settings.secret_key, algorithms=["HS256"], issuer=settings.jwt_issuer, **common
            )
            internal = True
        elif alg in ("RS256", "ES256"):
            claims = _verify_asymmetric(token, alg, settings, common)
            internal = False
        else:
            raise _unauthorized(f"Tokens signed with {alg!r} are not accepted.")
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("The bearer token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized(f"The bearer token was refused: {exc}.") from exc
    if float(claims["exp"]) - time.time() > settings.jwt_max_lifetime_s:
        raise _unauthorized(
            f"The bearer token lives longer than {settings.jwt_max_lifetime_s} s; ask for a shorter one."
        )
    _check_claim_types(claims)
    roles = claims.get("roles") or ([claims["role"]] if claims.get("role") else [])
    if isinstance(roles, str):
        roles = [roles]
    known = frozenset(r for r in roles if r in ROLES)
    agency: str | None = claims.get("agency") or None
    for name, value in (("sub", str(claims["sub"])), ("agency", agency)):
        if value is not None and not _NAME_CLAIM.fullmatch(value):
            raise _unauthorized(f"The bearer token's {name!r} claim is not 1-255 printable characters.")
    signed_by: tuple[str, str] | None = None
    if internal:
        if settings.env == "production" and known - {"service"}:
            raise _unauthorized(
                "Agency users' tokens must come from the agency's identity provider (RS256/ES256)."
            )
    else:
        # Only Canvass's own services act as `service`; an identity provider speaks only for its agencies.
        known = known - {"service"}
        _check_issuer_speaks_for(str(claims["iss"]), agency, settings)
        url = _key_sources(str(claims["iss"]), settings)[0]
        kid = header.get("kid") if url else None
        signed_by = (url, str(kid)) if url and kid is not None else None
    return Principal(sub=str(claims["sub"]), roles=known, agency=agency, claims=claims, signed_by=signed_by)


def _check_claim_types(claims: dict[str, Any]) -> None:
    """Claims of the wrong JSON type are a malformed token (401), not a caller with no role or no agency: a role
    given as a number or an agency as a list would otherwise be read as something it does not say."""
    wrong: list[str] = []
    for name in ("role", "agency"):
        if name in claims and claims[name] is not None and not isinstance(claims[name], str):
            wrong.append(name)
    roles = claims.get("roles")
    if roles is not None and not (
        isinstance(roles, str) or (isinstance(roles, list) and all(isinstance(r, str) for r in roles))
    ):
        wrong.append("roles")
    if wrong:
        raise _unauthorized(
            f"The bearer token's claim {wrong[0]!r} has the wrong type"
            " (role and agency are strings, roles a string or a list of strings)."
        )


def _check_issuer_speaks_for(issuer: str, agency: str | None, settings: Settings) -> None:
    if settings.jwt_issuers is None:
        if issuer != settings.jwt_issuer:
            raise _unauthorized(f"Tokens issued by {issuer!r} are not accepted.")
        return
    agencies = settings.jwt_issuers.get(issuer)
    if agencies is None:
        raise _unauthorized(f"Tokens issued by {issuer!r} are not accepted.")
    if agency is not None and "*" not in agencies and agency not in agencies:
        raise _unauthorized(f"The issuer {issuer!r} does not speak for the agency {agency!r}.")


# Verified principals by the token's hash (SHA-256: the process keeps no bearer token it could leak): a client
# sends the same token with every request, and checking its signature (and parsing it) again each time was a
# measurable share of a request's CPU. A hit is served only to the same Settings object and never past the
# token's `exp` (which the issuer keeps short: at most CANVASS_JWT_MAX_LIFETIME_S), per process, in a bounded
# LRU. What that means for a key the issuer withdraws: a configuration without it is a new Settings object, which
# no hit is served to (at once); a token verified with a key of the JWKS is served from here only while its key
# (`kid`) is still in the key set the process holds, so once the process reads a JWKS without that key (the JWKS
# client keeps a key set for JWKS_LIFESPAN_S, exactly as long as a token never seen would still verify with it)
# the tokens it signed are verified again, and refused. Canvass has no revocation list of single tokens: a token
# is good until its `exp`. Only successes are kept.
PRINCIPAL_CACHE_SIZE = 4096
# Each entry: the settings it was verified under, the principal (with the JWKS key that signed it, if one did), and
# its expiry.
principal_cache: OrderedDict[bytes, tuple[Settings, Principal, float]] = OrderedDict()


def token_key(token: str) -> bytes:
    """What the principal cache keys a token by."""
    return hashlib.sha256(token.encode()).digest()


def verified_principal(token: str, settings: Settings) -> Principal:
    """`verify_jwt`, remembered until the token expires (bounded LRU; see above for a withdrawn key)."""
    now = time.time()
    key = token_key(token)
    hit = principal_cache.get(key)
    if hit is not None:
        cached_settings, principal, until = hit
        signed_by = principal.signed_by
        if cached_settings is settings and now < until and (signed_by is None or _published(*signed_by)):
            principal_cache.move_to_end(key)
            return principal
        del principal_cache[key]
    principal = verify_jwt(token, settings)
    exp = principal.claims.get("exp")
    if isinstance(exp, int | float) and float(exp) > now:
        principal_cache[key] = (settings, principal, float(exp))
        if len(principal_cache) > PRINCIPAL_CACHE_SIZE:
            principal_cache.popitem(last=False)
    return principal


def _published(url: str, kid: str) -> bool:
    """Whether the key set this process holds for the JWKS at `url` (refreshed as for every token) still has
    `kid`."""
    try:
        keys = jwks_client(url).get_jwk_set().keys
    except (
        jwt.PyJWTError
    ):  # the JWKS cannot be read: verify again (and refuse as a token never seen would be)
        return False
    return any(k.key_id == kid for k in keys)


def key_withdrawn(signed_by: tuple[str, str]) -> bool:
    """Whether the key that signed a token (`Principal.signed_by`) is gone from its JWKS, read again now (a
    blocking HTTP request: call it off the event loop). For what goes on after the token was verified, such as a
    live viewing, which cannot wait for the key set's lifespan. A JWKS that cannot be read withdraws nothing: the
    key was good when the token was verified, and nothing says otherwise (the error is raised, for the caller to
    log)."""
    url, kid = signed_by
    keys = jwks_client(url).get_jwk_set(refresh=True).keys
    return not any(k.key_id == kid for k in keys)


def _key_sources(issuer: str, settings: Settings) -> tuple[str | None, str | None]:
    """(JWKS URL, PEM keys) of `issuer`: its own (CANVASS_JWT_ISSUER_KEYS), else the configured ones."""
    own = (settings.jwt_issuer_keys or {}).get(issuer)
    if own is None:
        return settings.jwks_url, settings.jwt_public_keys
    if own.startswith(("https://", "http://")):
        return own, None
    return None, own


def _verify_asymmetric(token: str, alg: str, settings: Settings, common: dict[str, Any]) -> dict[str, Any]:
    """The claims of a token signed by a key of the issuer it names: that issuer's own keys
    (CANVASS_JWT_ISSUER_KEYS) or, for the one issuer without them, the configured keys. A key of one identity
    provider never vouches for a token naming another."""
    issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    if not isinstance(issuer, str):
        raise jwt.MissingRequiredClaimError("iss")
    common = {**common, "issuer": issuer}
    jwks_url, public_keys = _key_sources(issuer, settings)
    if jwks_url:
        key = jwks_client(jwks_url).get_signing_key_from_jwt(token).key
        return jwt.decode(token, key, algorithms=[alg], **common)
    if not public_keys:
        raise _unauthorized("No public keys are configured for RS256/ES256 tokens.")
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    kind = rsa.RSAPublicKey if alg == "RS256" else ec.EllipticCurvePublicKey
    last: Exception | None = None
    for key in _public_keys(public_keys):
        if not isinstance(key, kind):
            continue
        try:
            return jwt.decode(token, key, algorithms=[alg], **common)
        except jwt.InvalidSignatureError as exc:
            last = exc
    raise jwt.InvalidSignatureError(str(last or "no key matched"))


def mint_token(
    role: str,
    agency: str | None,
    *,
    sub: str | None = None,
    ttl_s: int = 8 * 3600,
    settings: Settings | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An HS256 token signed with the secret key: any role in development (what `make token` prints); in
    production only the `service` token one Canvass service mints for itself to call another."""
    s = settings or get_settings()
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub or f"dev-{role}",
        "role": role,
        "iss": s.jwt_issuer,
        "aud": s.jwt_audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    if agency:
        claims["agency"] = agency
    claims.update(extra or {})
    return jwt.encode(claims, s.secret_key, algorithm="HS256")


async def _credentials(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    # Through Depends, so every route that reads the bearer declares the security scheme in its contract.
    return creds.credentials if creds else None


# Whether an agency slug names an agency Canvass knows: each service gives its look-up to the app factory
# (`create_app(agency_known=...)`, kept in `app.state`). Known agencies are remembered for AGENCY_TTL_S; an unknown
# one is asked again each time, so an agency is recognised from the moment it is created.
AgencyLookup = Callable[[str], Awaitable[bool]]
AGENCY_TTL_S = 60.0
AGENCY_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM registry.agencies WHERE slug = $1)"
_known_agencies: dict[str, float] = {}


async def agency_is_known(request: Request, slug: str) -> bool:
    now = time.monotonic()
    if _known_agencies.get(slug, 0.0) > now:
        return True
    lookup: AgencyLookup | None = getattr(request.app.state, "agency_known", None)
    if lookup is None:
        return True
    if not await lookup(slug):
        return False
    if len(_known_agencies) > PRINCIPAL_CACHE_SIZE:
        _known_agencies.clear()
    _known_agencies[slug] = now + AGENCY_TTL_S
    return True


async def _signed_principal(
    token: Annotated[str | None, Depends(_credentials)],
) -> Principal | None:
    """The verified token's principal, whether or not Canvass knows its agency (only an agency's founding
    administrator may call with an agency that does not exist yet)."""
    if not token or token.startswith(OWNER_PREFIX):
        return None
    return verified_principal(token, get_settings())


async def optional_principal(
    request: Request, principal: Annotated[Principal | None, Depends(_signed_principal)]
) -> Principal | None:
    """The caller, if a token was given. A validly signed token speaking for an agency Canvass does not know is
    refused (403) on every operation, whatever it asks."""
    if principal is not None and principal.agency is not None:
        if not await agency_is_known(request, principal.agency):
            raise Problem(403, f"The token's agency {principal.agency!r} is not registered with Canvass.")
    return principal


def _required(principal: Principal | None) -> Principal:
    if principal is None:
        raise _unauthorized("This operation needs an agency bearer token.")
    return principal


async def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    return _required(principal)


async def _current_unregistered(
    principal: Annotated[Principal | None, Depends(_signed_principal)],
) -> Principal:
    return _required(principal)


async def owner_credential(token: Annotated[str | None, Depends(_credentials)]) -> OwnerCredential:
    cred = parse_owner_credential(token) if token else None
    if cred is None:
        raise _unauthorized(
            "This operation needs the registration's management credential as a bearer token."
        )
    return cred


def require_roles(*roles: str, registered: bool = True) -> Any:
    """A caller with one of `roles`, speaking for an agency; `registered=False` also lets through an agency
    Canvass does not know yet (publishing it is the one thing such a caller may do)."""
    source = current_principal if registered else _current_unregistered

    # A default, not an annotation: the dependency is chosen at run time, and annotations are strings here.
    async def _check(principal: Principal = Depends(source)) -> Principal:
        if not principal.has(*roles):
            raise Problem(403, f"This operation needs one of the roles: {', '.join(roles)}.")
        if principal.agency is None:
            raise Problem(403, "The token names no agency.")
        return principal

    return Depends(_check)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
# The `openapi_extra` of an operation that takes a token but does not need one (an OptionalPrincipal route open
# to anyone): FastAPI lists the bearer requirement, and this adds the empty one beside it, `[{bearer}, {}]`.
TOKEN_OPTIONAL: dict[str, Any] = {"security": [{}]}
CurrentOwner = Annotated[OwnerCredential, Depends(owner_credential)]
