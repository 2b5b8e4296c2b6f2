"""The whole state machine against the running services, derived from the tables in `states.py`: every state of a
request × every action the API takes × every agency role, and every state of a target × every owner action,
each answer checked against the table (200 where it allows the role, 403 where it names other roles, 409 where it
has no such transition) and the state checked to have moved (or not) accordingly. The system's actions are
driven through the worker (expiry) and through the cascades of the agency's transitions (notify, complete,
expire). A transition added to a table is tested here without a new test.

Also: concurrent close and cancel of one sent request — exactly one wins, every other caller gets a 409."""

from __future__ import annotations

import threading
import typing
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.requests_api.schemas import TransitionIn
from services.requests_api.states import REQUEST_FINAL, REQUEST_TRANSITIONS, TARGET_TRANSITIONS, Rule
from tests.requests.conftest import Flow, NewAgency, NewOwner, Owner, eventually, patch_registration
from tests.support import Db

API_ACTIONS: tuple[str, ...] = typing.get_args(TransitionIn.model_fields["action"].annotation)
AGENCY_ROLES = ("investigator", "supervisor")
REQUEST_STATES = sorted({s for s, _ in REQUEST_TRANSITIONS} | {r.to for r in REQUEST_TRANSITIONS.values()})
TARGET_STATES = sorted({s for s, _ in TARGET_TRANSITIONS} | {r.to for r in TARGET_TRANSITIONS.values()})
OWNER_ANSWERS = ("accept", "decline", "unavailable")
# Targets whose owner the request never reached (not yet sent; or dropped as no longer reachable at sending).
UNREACHED = ("pending", "dropped")


def expected(table: dict[tuple[str, str], Rule], state: str, action: str, role: str) -> int:
    rule = table.get((state, action))
    if rule is None:
        return 409
    return 200 if role in rule.roles else 403


def allowed(table: dict[tuple[str, str], Rule], state: str, role: str) -> list[str]:
    return sorted(a for (s, a), rule in table.items() if s == state and role in rule.roles)


def offered(r: httpx.Response) -> list[str]:
    """The actions a 409 says the caller may take instead (none when it names none)."""
    detail = str(r.json()["detail"])
    return detail.split("; you may: ", 1)[1].rstrip(".").split(", ") if "; you may: " in detail else []


def test_the_tables_cover_every_action_the_api_takes() -> None:
    assert set(API_ACTIONS) <= {a for _, a in REQUEST_TRANSITIONS}
    assert set(OWNER_ANSWERS) | {"view", "upload"} <= {a for _, a in TARGET_TRANSITIONS}


@pytest.fixture
def machine(
    requests_client: httpx.Client,
    registry: httpx.Client,
    auth: Any,
    new_agency: NewAgency,
    new_owner: NewOwner,
    db: Db,
) -> Machine:
    agency = new_agency(requires_approval=False)
    flow = Flow(requests_client, auth, agency)
    owner = new_owner(agency, agency.near(0.0002, 0.0002))
    new_owner(agency, agency.near(-0.0002, -0.0002))  # another owner, so a request still goes when one drops
    return Machine(flow, owner, db, registry)


class Machine:
    """Builds a request (and its one target) in any state, through the API wherever the API leads there."""

    def __init__(self, flow: Flow, owner: Owner, db: Db, registry: httpx.Client) -> None:
        self.flow, self.owner, self.db, self.registry = flow, owner, db, registry

    def state(self, rid: str) -> str:
        return str(self.flow.read(rid)["state"])

    def _ok(self, r: httpx.Response) -> None:
        assert r.status_code == 200, r.text

    def request_in(self, state: str) -> str:
        f = self.flow
        rid = str(f.create()["id"])
        if state == "draft":
            return rid
        if state in ("pending_approval", "approved", "rejected"):
            self._ok(f.act(rid, "submit"))
            if state == "approved":
                # Approval sends at once, so no caller ever leaves a request in 'approved'; the table still has
                # it (a send by the system, a cancel): the row is put there directly.
                self.db.execute(
                    "UPDATE requests.requests SET state = 'approved' WHERE id = $1", uuid.UUID(rid)
                )
            if state == "rejected":
                self._ok(f.act(rid, "reject"))
            return rid
        if state == "cancelled":
            self._ok(f.act(rid, "cancel"))
            return rid
        if state == "expired":
            self.expire_now(rid)
            assert eventually(lambda: self.state(rid) == "expired"), "the worker did not expire the request"
            return rid
        self._ok(f.act(rid, "send"))
        if state == "closed":
            self._ok(f.act(rid, "close"))
        assert self.state(rid) == state
        return rid

    def expire_now(self, rid: str) -> None:
        self.db.execute(
            "UPDATE requests.requests SET due_at = now() - interval '1 second' WHERE id = $1", uuid.UUID(rid)
        )

    # --- targets -----------------------------------------------------------------------------------------

    def target_state(self, rid: str) -> str:
        return str(
            self.db.fetchval(
                "SELECT state FROM requests.targets WHERE request_id = $1 AND registration_id = $2",
                uuid.UUID(rid),
                uuid.UUID(self.owner.registration_id),
            )
        )

    def answer(self, rid: str, answer: str) -> httpx.Response:
        return self.flow.client.post(
            f"/v1/owner/requests/{rid}/answer", json={"answer": answer}, headers=self.owner.headers
        )

    def upload(self, rid: str) -> httpx.Response:
        return self.flow.client.post(
            f"/v1/owner/evidence/{rid}",
            files={"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * 64, "video/mp4")},
            headers=self.owner.headers,
        )

    def view(self, rid: str) -> httpx.Response:
        return self.flow.client.get(f"/v1/owner/requests/{rid}", headers=self.owner.headers)

    def target_in(self, state: str) -> str:
        """A request whose target (this owner's) is in `state`."""
        f = self.flow
        if state == "pending":
            return str(f.create()["id"])
        if state == "dropped":
            # The owner paused between the draft and its sending: no longer reachable, so dropped.
            rid = str(f.create()["id"])
            patch_registration(self.registry, self.owner, {"status": "paused"})
            try:
                self._ok(f.act(rid, "send"))
            finally:
                patch_registration(self.registry, self.owner, {"status": "active"})
            assert self.target_state(rid) == "dropped"
            return rid
        rid = self.request_in("sent")
        steps: dict[str, Callable[[], Any]] = {
            "notified": lambda: None,
            "viewed": lambda: self.view(rid),
            "accepted": lambda: self.answer(rid, "accept"),
            "declined": lambda: self.answer(rid, "decline"),
            "video_unavailable": lambda: self.answer(rid, "unavailable"),
            "uploaded": lambda: (self.answer(rid, "accept"), self.upload(rid)),
            "completed": lambda: (self.answer(rid, "accept"), self.upload(rid), f.act(rid, "close")),
            "expired": lambda: f.act(rid, "cancel"),
        }
        steps[state]()
        assert self.target_state(rid) == state
        return rid


def test_every_request_state_action_and_agency_role_answers_as_the_table_says(machine: Machine) -> None:
    f = machine.flow
    headers = {"investigator": f.inv, "supervisor": f.sup}
    checked = 0
    for state in REQUEST_STATES:
        probe: str | None = None
        for action in API_ACTIONS:
            for role in AGENCY_ROLES:
                want = expected(REQUEST_TRANSITIONS, state, action, role)
                if want == 200:
                    rid = machine.request_in(state)
                else:
                    probe = probe or machine.request_in(state)
                    rid = probe
                r = f.act(rid, action, headers[role]())
                where = f"{state} × {action} × {role}"
                assert r.status_code == want, f"{where}: {r.status_code} {r.text}"
                if want == 200:
                    to = REQUEST_TRANSITIONS[(state, action)].to
                    # An approval sends the request at once (approved → send, by the same person).
                    to = REQUEST_TRANSITIONS[("approved", "send")].to if action == "approve" else to
                    assert r.json()["state"] == to, where
                    if to == "sent":  # the system notified every target
                        assert machine.target_state(rid) == "notified", where
                else:
                    assert r.headers["content-type"].startswith("application/problem+json"), where
                    assert machine.state(rid) == state, f"{where}: a refused transition changed the state"
                    if want == 409:
                        # Only the actions this caller can take are offered; never the system's.
                        assert offered(r) == allowed(REQUEST_TRANSITIONS, state, role), where
                checked += 1
        # What the request says its reader may do is the table, for that role, less the system's actions.
        rid = probe or machine.request_in(state)
        for role in AGENCY_ROLES:
            shown = f.client.get(f"/v1/requests/{rid}", headers=headers[role]()).json()["allowed_actions"]
            assert shown == allowed(REQUEST_TRANSITIONS, state, role), (state, role)
    assert checked == len(REQUEST_STATES) * len(API_ACTIONS) * len(AGENCY_ROLES)


def test_every_target_state_and_owner_action_answers_as_the_table_says(machine: Machine) -> None:
    checked = 0
    for state in TARGET_STATES:
        probe: str | None = None
        for action in (*OWNER_ANSWERS, "upload"):
            want = expected(TARGET_TRANSITIONS, state, action, "owner")
            # A second file for a target already uploaded is an upload, not a transition: it stays 'uploaded'.
            extra_file = state == "uploaded" and action == "upload"
            if want == 200 or extra_file:
                rid = machine.target_in(state)
            else:
                probe = probe or machine.target_in(state)
                rid = probe
            r = machine.upload(rid) if action == "upload" else machine.answer(rid, action)
            where = f"target {state} × {action}"
            if state in UNREACHED:
                # A request that has not reached the owner is not theirs to see (404), whatever the table says
                # of such a target.
                assert r.status_code == 404, f"{where}: {r.text}"
                assert machine.target_state(rid) == state, where
            elif want == 200 or extra_file:
                assert r.status_code == (201 if action == "upload" else 200), f"{where}: {r.text}"
                to = "uploaded" if extra_file else TARGET_TRANSITIONS[(state, action)].to
                assert machine.target_state(rid) == to, where
            else:
                assert r.status_code == 409, f"{where}: {r.status_code} {r.text}"
                # Never an action the owner cannot take (the system's expiry) is offered.
                assert set(offered(r)) <= set(allowed(TARGET_TRANSITIONS, state, "owner")), where
                assert machine.target_state(rid) == state, f"{where}: a refused answer changed the state"
            checked += 1
        # Reading a request marks the target viewed exactly where the table has (state, view).
        rid = probe or machine.target_in(state)
        r = machine.view(rid)
        assert r.status_code == (404 if state in UNREACHED else 200), r.text
        moved = ("notified", "view") in TARGET_TRANSITIONS and state == "notified"
        assert machine.target_state(rid) == ("viewed" if moved else state), state
        if state not in UNREACHED:
            answers = [a for a in OWNER_ANSWERS if expected(TARGET_TRANSITIONS, state, a, "owner") == 200]
            sent = machine.state(rid) == "sent"
            assert r.json()["allowed_answers"] == (sorted(answers) if sent else []), state
    assert checked == len(TARGET_STATES) * (len(OWNER_ANSWERS) + 1)


def test_the_system_expires_each_request_state_the_table_lets_it_and_no_other(machine: Machine) -> None:
    """The worker (the system role) expires requests past due in exactly the states the table allows, and its
    cascade moves their targets as the target table says (open → expired, uploaded → completed)."""
    by_state = {s: machine.request_in(s) for s in REQUEST_STATES}
    uploaded = machine.target_in("uploaded")
    for rid in [*by_state.values(), uploaded]:
        machine.expire_now(rid)
    expirable = {
        s for (s, a), rule in REQUEST_TRANSITIONS.items() if a == "expire" and "system" in rule.roles
    }
    assert eventually(lambda: all(machine.state(by_state[s]) == "expired" for s in expirable)), expirable
    assert eventually(lambda: machine.state(uploaded) == "expired")
    assert machine.target_state(uploaded) == TARGET_TRANSITIONS[("uploaded", "complete")].to
    assert machine.target_state(by_state["sent"]) == TARGET_TRANSITIONS[("notified", "expire")].to
    # Every other state kept (a finished request is never expired).
    for state in set(REQUEST_STATES) - expirable:
        assert state in REQUEST_FINAL
        assert machine.state(by_state[state]) == state


def test_concurrent_close_and_cancel_of_a_sent_request_have_one_winner_and_409s(machine: Machine) -> None:
    f = machine.flow
    rid = machine.request_in("sent")
    n = 20
    barrier = threading.Barrier(n)
    answers: list[int] = []
    lock = threading.Lock()

    def act(i: int) -> None:
        with httpx.Client(base_url=str(f.client.base_url), timeout=30) as c:
            headers = {**(f.inv() if i % 2 else f.sup()), "If-Match": "*"}
            barrier.wait()
            r = c.post(
                f"/v1/requests/{rid}/transitions",
                json={"action": "close" if i % 2 else "cancel"},
                headers=headers,
            )
            with lock:
                answers.append(r.status_code)

    threads = [threading.Thread(target=act, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200] + [409] * (n - 1), answers
    assert machine.state(rid) in ("closed", "cancelled")
