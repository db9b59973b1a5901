#!/usr/bin/python3
"""Two users walk through a homeserver with matrix-nio, a real Matrix client library.

Usage: walkthrough.py HOMESERVER_URL [--budget SECONDS] [--require-bundled-aggregations]

The server must allow open registration with the m.login.dummy flow. Every step asserts its result; a failed
step does not stop the walk (steps that need it are skipped, the others still run), and the summary at the end
lists every step. Waiting is always a sync loop with a deadline, never a bare sleep.

Exit status: 0 only when every step passed; 1 when any failed or was skipped; 2 on bad usage.
"""

import argparse
import asyncio
import json
import sys
import time
import traceback
import uuid
import struct
import zlib
from urllib.parse import urlparse

from nio import (
    AsyncClient,
    AsyncClientConfig,
    BadEvent,
    DownloadResponse,
    ErrorResponse,
    Event,
    FullyReadEvent,
    InviteMemberEvent,
    JoinedRoomsResponse,
    JoinResponse,
    LoginResponse,
    LogoutResponse,
    MessageDirection,
    ProfileGetAvatarResponse,
    ProfileGetDisplayNameResponse,
    ProfileGetResponse,
    ProfileSetAvatarResponse,
    ProfileSetDisplayNameResponse,
    ReceiptEvent,
    RegisterResponse,
    RoomCreateResponse,
    RoomDeleteAliasResponse,
    RoomForgetResponse,
    RoomGetEventResponse,
    RoomGetStateEventResponse,
    RoomGetVisibilityResponse,
    RoomInviteResponse,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomPutAliasResponse,
    RoomPutStateResponse,
    RoomReadMarkersResponse,
    RoomRedactResponse,
    RoomResolveAliasResponse,
    RoomSendResponse,
    RoomTypingResponse,
    SyncResponse,
    ThumbnailResponse,
    TypingNoticeEvent,
    UnknownBadEvent,
    UpdateReceiptMarkerResponse,
    UploadResponse,
)
from nio.api import Api, ResizingMethod
from nio.responses import WhoamiResponse  # not re-exported by nio 0.20's package

WAIT_SECONDS = 10.0  # how long one sync-loop wait may take before the step fails
STEP_SECONDS = 40.0  # hard cap on one step
PASSWORD = "interop correct horse battery"


def png(width, height):
    """A real RGB PNG (a gradient) made with the standard library, for the media steps."""
    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width))
                    for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_size(data):
    """(width, height) from a PNG's IHDR, or None when the bytes are not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


class StepFailed(Exception):
    """A step's assertion did not hold; the message says what was expected and what came back."""


def ensure(condition, message):
    if not condition:
        raise StepFailed(message)


def short(value, limit=1500):
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


async def describe(resp):
    """A nio response as the HTTP exchange behind it: status, errcode, body."""
    transport = getattr(resp, "transport_response", None)
    status, body = "?", ""
    if transport is not None:
        status = transport.status
        try:
            body = await transport.text()  # aiohttp keeps the body once read, so this re-reads nothing
        except Exception as e:  # the body is gone; say so rather than hide the original failure
            body = f"<body unavailable: {e}>"
        where = f"{transport.method} {transport.url.path}"
    else:
        where = "?"
    kind = type(resp).__name__
    if isinstance(resp, ErrorResponse):
        return f"{kind} for {where}: HTTP {status}, errcode {resp.status_code}, message {resp.message!r}, body {short(body)}"
    return f"{kind} for {where}: HTTP {status}, body {short(body)}"


async def expect(resp, cls, what):
    """Fails the step unless the request succeeded (HTTP 2xx) and nio parsed the response as cls. Both are
    checked: some nio response classes (RoomPutAliasResponse) accept any body, errors included."""
    transport = getattr(resp, "transport_response", None)
    if not isinstance(resp, cls) or transport is None or not 200 <= transport.status < 300:
        raise StepFailed(f"{what}: expected {cls.__name__} (HTTP 2xx), got {await describe(resp)}")
    return resp


async def expect_error(resp, status, errcode, what):
    """Fails the step unless the request failed with this HTTP status and (when given) errcode. Judged from the
    HTTP exchange itself, since nio does not turn every error into an ErrorResponse."""
    transport = getattr(resp, "transport_response", None)
    got_errcode = None
    if transport is not None:
        try:
            got_errcode = json.loads(await transport.text()).get("errcode")
        except (ValueError, AttributeError):
            got_errcode = None
    if transport is None or transport.status != status or (errcode and got_errcode != errcode):
        raise StepFailed(f"{what}: expected HTTP {status}{' ' + errcode if errcode else ''}, got {await describe(resp)}")


def nio_predates_v11_create(source):
    """True for an m.room.create event of room version 11 or later that nio rejects only for lacking
    content.creator (nio 0.20's schema still requires it): with creator set to the sender, nio parses it."""
    content = source.get("content")
    if source.get("type") != "m.room.create" or not isinstance(content, dict) or "creator" in content:
        return False
    if content.get("room_version") in {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"} or "room_version" not in content:
        return False
    patched = dict(source, content=dict(content, creator=source.get("sender")))
    return not isinstance(Event.parse_event(patched), (BadEvent, UnknownBadEvent))


class User:
    """One person: a nio client plus everything their syncs delivered, kept so waits can look back."""

    def __init__(self, walk, name):
        self.walk = walk
        self.name = name
        self.localpart = f"{name}-{uuid.uuid4().hex[:8]}"
        self.client = walk.new_client()
        self.password = PASSWORD
        self.timeline = {}  # room ID -> [event source dict], in arrival order
        self.ephemeral = {}  # room ID -> [nio ephemeral event]
        self.room_account_data = {}  # room ID -> [nio account data event]
        self.invites = {}  # room ID -> [nio invite state event] (latest invite)
        self.left = set()  # room IDs that arrived in rooms.leave
        self.last_sync_body = None

    @property
    def user_id(self):
        return self.client.user_id

    def events(self, room_id, start=0):
        return self.timeline.get(room_id, [])[start:]

    def mark(self, room_id):
        """Positions to look for new arrivals after an action: (timeline, ephemeral, account data)."""
        return (len(self.timeline.get(room_id, [])), len(self.ephemeral.get(room_id, [])),
                len(self.room_account_data.get(room_id, [])))

    async def sync_once(self, timeout_ms):
        resp = await self.client.sync(timeout=max(1, int(timeout_ms)))
        if not isinstance(resp, SyncResponse):
            raise StepFailed(f"{self.name}: sync failed: {await describe(resp)}")
        self.last_sync_body = await resp.transport_response.text()
        for room_id, info in resp.rooms.join.items():
            self.left.discard(room_id)
            self.invites.pop(room_id, None)
            self._add_events(room_id, info.state, "state")
            self._add_events(room_id, info.timeline.events, "timeline")
            self.ephemeral.setdefault(room_id, []).extend(info.ephemeral)
            self.room_account_data.setdefault(room_id, []).extend(info.account_data)
        for room_id, info in resp.rooms.invite.items():
            self.invites[room_id] = info.invite_state
        for room_id, info in resp.rooms.leave.items():
            self.left.add(room_id)
            self.invites.pop(room_id, None)
            self._add_events(room_id, info.timeline.events, "timeline")
        return resp

    def _add_events(self, room_id, events, section):
        for event in events:
            if isinstance(event, (BadEvent, UnknownBadEvent)):
                self.walk.unparsed.append((self.name, f"sync {section}", event.source))
            self.timeline.setdefault(room_id, []).append(event.source)

    async def wait_for(self, what, probe, timeout=WAIT_SECONDS):
        """Syncs (long-polling) until probe() returns something truthy; fails the step after the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = probe()
            if found:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StepFailed(
                    f"{self.name} timed out after {timeout:.0f}s waiting for {what}; "
                    f"last sync body: {short(self.last_sync_body or '<none>', 3000)}")
            await self.sync_once(min(1000, remaining * 1000))

    def find_event(self, room_id, start, predicate):
        for event in self.events(room_id, start):
            if predicate(event):
                return event
        return None


class Walkthrough:
    def __init__(self, url, budget, require_bundling):
        self.url = url.rstrip("/")
        self.budget = budget
        self.require_bundling = require_bundling
        self.started = time.monotonic()
        self.results = []  # (name, outcome, detail)
        self.outcome = {}
        self.notes = []
        self.unparsed = []  # (who, where, source) for events nio could not parse
        self.clients = []
        self.alice = None
        self.bob = None
        self.room_id = None
        self.server_name = None
        self.run_id = uuid.uuid4().hex[:8]
        self.text_id = None
        self.edit_id = None

    # ----- infrastructure -----

    def new_client(self, user_id=""):
        config = AsyncClientConfig(encryption_enabled=False, max_limit_exceeded=3, max_timeouts=2,
                                   request_timeout=30)
        client = AsyncClient(self.url, user_id, config=config)
        self.clients.append(client)
        return client

    def client_with_token(self, user_id, device_id, token):
        """A second client on an existing session (nio's restore_login wants a crypto store; this needs none)."""
        client = self.new_client(user_id)
        client.user_id, client.device_id, client.access_token = user_id, device_id, token
        return client

    def note(self, message):
        self.notes.append(message)
        print(f"    NOTE: {message}", flush=True)

    async def raw(self, client, method, parts, body=None, query=None, auth=True):
        """A request matrix-nio 0.20 has no method for, sent through nio's own transport (AsyncClient.send)."""
        query = dict(query or {})
        if auth:
            query["access_token"] = client.access_token
        path = Api._build_path(parts, query or None)
        data = None if body is None else json.dumps(body)
        resp = await client.send(method, path, data, {"Content-Type": "application/json"})
        text = await resp.text()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        shown = "/".join(["/_matrix/client/r0"] + list(parts))
        return resp.status, parsed, f"{method} {shown} -> HTTP {resp.status}, body {short(text)}"

    async def step(self, name, action, needs=()):
        missing = [n for n in needs if self.outcome.get(n) != "passed"]
        if missing:
            self._record(name, "skipped", "needs " + ", ".join(missing))
            return
        if time.monotonic() - self.started > self.budget:
            self._record(name, "skipped", f"the walk's time budget ({self.budget:.0f}s) is spent")
            return
        print(f"... {name}", flush=True)
        try:
            await asyncio.wait_for(action(), STEP_SECONDS)
            self._record(name, "passed", "")
        except StepFailed as e:
            self._record(name, "failed", str(e))
        except asyncio.TimeoutError:
            self._record(name, "failed", f"did not finish within {STEP_SECONDS:.0f}s")
        except Exception:  # a crash in the step (or in nio) is a failure of that step, not of the walk
            self._record(name, "failed", "crashed:\n" + traceback.format_exc())

    async def parts(self, parts):
        """Runs independent parts of one step, all of them even when some fail, and fails the step with every
        failure (so one run shows the state of a whole feature, not just its first gap)."""
        failures = []
        for label, action in parts:
            try:
                await action()
            except StepFailed as e:
                failures.append(f"[{label}] {e}")
        ensure(not failures, f"{len(failures)} of {len(parts)} parts failed:\n    " + "\n    ".join(failures))

    def _record(self, name, outcome, detail):
        self.results.append((name, outcome, detail))
        self.outcome[name] = outcome
        label = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[outcome]
        print(f"{label} {name}" + (f": {detail}" if detail else ""), flush=True)

    # ----- the walk -----

    async def run(self):
        s = self.step
        await s("register", self.register)
        await s("login", self.login, ["register"])
        await s("create room", self.create_room, ["login"])
        await s("invite", self.invite, ["create room"])
        await s("join", self.join, ["invite"])
        await s("send text and receive it via sync", self.send_text, ["join"])
        await s("edit (m.replace) and receive it via sync", self.edit, ["send text and receive it via sync"])
        await s("edit is bundled in the original's unsigned.m.relations", self.edit_bundled,
                ["edit (m.replace) and receive it via sync"])
        await s("react (m.annotation) and receive it via sync", self.react, ["send text and receive it via sync"])
        await s("redact and receive the redaction via sync", self.redact, ["join"])
        await s("typing notifications", self.typing, ["join"])
        await s("read receipts and fully-read marker", self.receipts, ["send text and receive it via sync"])
        await s("set room name and topic", self.name_and_topic, ["join"])
        await s("paginate /messages", self.paginate, ["join"])
        await s("set profile (display name, avatar)", self.profile, ["login"])
        await s("upload media, download it and a thumbnail", self.media, ["login"])
        await s("profile change reaches room membership", self.profile_in_room, ["join", "set profile (display name, avatar)"])
        await s("publish to the room directory and list it", self.directory, ["set room name and topic"])
        await s("create and resolve an alias", self.alias, ["join"])
        await s("leave and forget", self.leave_and_forget, ["join"])
        await s("logout", self.logout, ["login"])
        await s("every event parsed by matrix-nio", self.all_parsed, ["login"])

    async def register(self):
        self.alice, self.bob = User(self, "alice"), User(self, "bob")
        for user in (self.alice, self.bob):
            resp = await expect(await user.client.register(user.localpart, user.password, "interop register"),
                                RegisterResponse, f"register {user.localpart}")
            ensure(resp.user_id.startswith(f"@{user.localpart}:"),
                   f"register returned user_id {resp.user_id!r} for username {user.localpart!r}")
            ensure(resp.access_token and resp.device_id, f"register returned no access_token/device_id: {await describe(resp)}")
            who = await expect(await user.client.whoami(), WhoamiResponse, f"whoami with {user.name}'s registration token")
            ensure(who.user_id == resp.user_id, f"whoami says {who.user_id!r}, registration said {resp.user_id!r}")
            user.registration = (resp.user_id, resp.device_id, resp.access_token)
        self.server_name = self.alice.user_id.split(":", 1)[1]
        resp = await self.new_client().register(self.alice.localpart, "another password")
        await expect_error(resp, 400, "M_USER_IN_USE", "registering a taken username")

    async def login(self):
        for user in (self.alice, self.bob):
            user_id, reg_device, _ = user.registration
            user.client = self.new_client(user_id)
            wrong = await user.client.login("not the password")
            await expect_error(wrong, 403, "M_FORBIDDEN", f"login as {user.name} with a wrong password")
            resp = await expect(await user.client.login(user.password, "interop login"), LoginResponse,
                                f"login as {user.name}")
            ensure(resp.user_id == user_id, f"login returned user_id {resp.user_id!r}, expected {user_id!r}")
            ensure(resp.device_id and resp.device_id != reg_device,
                   f"login should create a new device; got {resp.device_id!r} (registration device {reg_device!r})")
            who = await expect(await user.client.whoami(), WhoamiResponse, f"whoami after {user.name}'s login")
            ensure(who.user_id == user_id, f"whoami says {who.user_id!r}")
            await user.sync_once(0)  # the initial sync: everything later arrives incrementally

    async def create_room(self):
        resp = await expect(await self.alice.client.room_create(), RoomCreateResponse, "createRoom")
        self.room_id = resp.room_id
        room = self.room_id

        def created():
            types = {e.get("type") for e in self.alice.events(room)}
            return "m.room.create" in types and self.alice.find_event(
                room, 0, lambda e: e.get("type") == "m.room.member" and e.get("state_key") == self.alice.user_id
                and e.get("content", {}).get("membership") == "join")

        await self.alice.wait_for("the new room (m.room.create and her own join) in sync", created)
        ensure(room in self.alice.client.rooms, "nio did not add the new room to alice's client.rooms")
        joined = await expect(await self.alice.client.joined_rooms(), JoinedRoomsResponse, "joined_rooms")
        ensure(room in joined.rooms, f"joined_rooms {joined.rooms} lacks {room}")

    async def invite(self):
        room, bob = self.room_id, self.bob
        await expect(await self.alice.client.room_invite(room, bob.user_id), RoomInviteResponse, "invite bob")

        def invited():
            return any(isinstance(e, InviteMemberEvent) and e.state_key == bob.user_id and e.membership == "invite"
                       for e in bob.invites.get(room, []))

        await bob.wait_for(f"an invite to {room} (rooms.invite with his m.room.member invite)", invited)
        ensure(room in bob.client.invited_rooms, "nio did not add the room to bob's client.invited_rooms")
        inviter = [e for e in bob.invites[room] if isinstance(e, InviteMemberEvent) and e.state_key == bob.user_id][0]
        ensure(inviter.sender == self.alice.user_id, f"the invite's sender is {inviter.sender!r}, expected alice")

    async def join(self):
        room, alice, bob = self.room_id, self.alice, self.bob
        mark = alice.mark(room)[0]
        resp = await expect(await bob.client.join(room), JoinResponse, "bob joins")
        ensure(resp.room_id == room, f"join returned room_id {resp.room_id!r}")
        await alice.wait_for("bob's join", lambda: alice.find_event(
            room, mark, lambda e: e.get("type") == "m.room.member" and e.get("state_key") == bob.user_id
            and e.get("content", {}).get("membership") == "join"))
        await bob.wait_for("the room in his rooms.join", lambda: room in bob.timeline and room not in bob.invites)
        ensure(room in bob.client.rooms, "nio did not move the room into bob's client.rooms")
        members = bob.client.rooms[room].users
        ensure(alice.user_id in members and bob.user_id in members,
               f"nio's member list for bob's copy of the room is {sorted(members)}")

    async def send_text(self):
        room, bob = self.room_id, self.bob
        mark = bob.mark(room)[0]
        alice_mark = self.alice.mark(room)[0]
        content = {"msgtype": "m.text", "body": f"hello bob ({self.run_id})"}
        txn = str(uuid.uuid4())
        resp = await expect(await self.alice.client.room_send(room, "m.room.message", content, tx_id=txn),
                            RoomSendResponse, "send a text message")
        self.text_id = resp.event_id
        event = await bob.wait_for("alice's text message", lambda: bob.find_event(
            room, mark, lambda e: e.get("event_id") == self.text_id))
        ensure(event.get("type") == "m.room.message" and event.get("sender") == self.alice.user_id,
               f"received event has the wrong type or sender: {short(event)}")
        ensure(event.get("content") == content, f"content changed in transit: sent {content}, got {event.get('content')}")
        ensure(isinstance(event.get("origin_server_ts"), int), f"no origin_server_ts: {short(event)}")
        ensure("transaction_id" not in event.get("unsigned", {}), f"bob was given alice's transaction ID: {short(event)}")
        # The sender's own copy carries the transaction ID: that is how clients match it to their local echo.
        own = await self.alice.wait_for("her own message", lambda: self.alice.find_event(
            room, alice_mark, lambda e: e.get("event_id") == self.text_id))
        ensure(own.get("unsigned", {}).get("transaction_id") == txn,
               f"the sender's copy should have unsigned.transaction_id {txn!r}: {short(own)}")
        # Sending again with the same transaction ID must not create a second event.
        txn = str(uuid.uuid4())
        first = await expect(await self.alice.client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "once"}, tx_id=txn),
                             RoomSendResponse, "send with a transaction ID")
        again = await expect(await self.alice.client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "once"}, tx_id=txn),
                             RoomSendResponse, "resend with the same transaction ID")
        ensure(first.event_id == again.event_id,
               f"a retried send (same txn ID) created a second event: {first.event_id} then {again.event_id}")

    async def edit(self):
        room, bob = self.room_id, self.bob
        mark = bob.mark(room)[0]
        new_body = f"hello bob, edited ({self.run_id})"
        content = {
            "msgtype": "m.text",
            "body": f"* {new_body}",
            "m.new_content": {"msgtype": "m.text", "body": new_body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": self.text_id},
        }
        resp = await expect(await self.alice.client.room_send(room, "m.room.message", content), RoomSendResponse,
                            "send an edit")
        self.edit_id = resp.event_id
        event = await bob.wait_for("alice's edit", lambda: bob.find_event(
            room, mark, lambda e: e.get("event_id") == self.edit_id))
        relates = event.get("content", {}).get("m.relates_to", {})
        ensure(relates == {"rel_type": "m.replace", "event_id": self.text_id},
               f"the edit's m.relates_to arrived as {relates}")
        ensure(event["content"].get("m.new_content") == content["m.new_content"],
               f"the edit's m.new_content arrived as {event['content'].get('m.new_content')}")

    async def edit_bundled(self):
        room, bob = self.room_id, self.bob
        seen = []  # (where, unsigned) for each way bob can read the original
        got = await expect(await bob.client.room_get_event(room, self.text_id), RoomGetEventResponse,
                           "GET the original event")
        seen.append(("GET /rooms/{roomId}/event/{eventId}", got.event.source.get("unsigned", {})))
        page = await expect(await bob.client.room_messages(room, bob.client.next_batch, limit=50), RoomMessagesResponse,
                            "GET /messages around the original")
        original = [e.source for e in page.chunk if e.source.get("event_id") == self.text_id]
        ensure(original, f"the original {self.text_id} is not in the last 50 events of /messages")
        seen.append(("/messages", original[0].get("unsigned", {})))
        if all("m.relations" not in unsigned for _, unsigned in seen) and not self.require_bundling:
            self.note("the server does not bundle aggregations yet (no unsigned.m.relations on the edited event "
                      f"from {' or '.join(w for w, _ in seen)}); accepted for now")
            return
        for where, unsigned in seen:
            replace = unsigned.get("m.relations", {}).get("m.replace")
            ensure(isinstance(replace, dict) and replace.get("event_id") == self.edit_id,
                   f"{where}: unsigned.m.relations.m.replace should name the edit {self.edit_id}; unsigned is {short(unsigned)}")

    async def react(self):
        room, alice = self.room_id, self.alice
        mark = alice.mark(room)[0]
        relates = {"rel_type": "m.annotation", "event_id": self.text_id, "key": "👍"}
        resp = await expect(await self.bob.client.room_send(room, "m.reaction", {"m.relates_to": relates}),
                            RoomSendResponse, "send a reaction")
        event = await alice.wait_for("bob's reaction", lambda: alice.find_event(
            room, mark, lambda e: e.get("event_id") == resp.event_id))
        ensure(event.get("type") == "m.reaction" and event.get("sender") == self.bob.user_id,
               f"the reaction arrived with the wrong type or sender: {short(event)}")
        ensure(event.get("content", {}).get("m.relates_to") == relates,
               f"the reaction's m.relates_to arrived as {event.get('content', {}).get('m.relates_to')}")

    async def redact(self):
        room, alice, bob = self.room_id, self.alice, self.bob
        mark = bob.mark(room)[0]
        sent = await expect(await alice.client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "oops, secret"}),
                            RoomSendResponse, "send the message to redact")
        await bob.wait_for("the message to be redacted", lambda: bob.find_event(
            room, mark, lambda e: e.get("event_id") == sent.event_id))
        mark = bob.mark(room)[0]
        red = await expect(await alice.client.room_redact(room, sent.event_id, reason="posted by mistake"),
                           RoomRedactResponse, "redact")
        event = await bob.wait_for("the redaction", lambda: bob.find_event(
            room, mark, lambda e: e.get("event_id") == red.event_id))
        target = event.get("redacts") or event.get("content", {}).get("redacts")
        ensure(event.get("type") == "m.room.redaction" and target == sent.event_id,
               f"the redaction arrived as {short(event)}")
        ensure(event.get("content", {}).get("reason") == "posted by mistake", f"the reason was lost: {short(event)}")
        got = await expect(await bob.client.room_get_event(room, sent.event_id), RoomGetEventResponse,
                           "GET the redacted event")
        source = got.event.source
        ensure(source.get("content") == {}, f"the redacted event still has content: {short(source)}")
        because = source.get("unsigned", {}).get("redacted_because", {})
        ensure(because.get("event_id") == red.event_id,
               f"unsigned.redacted_because should be the redaction {red.event_id}: {short(source)}")

    async def typing(self):
        room, alice, bob = self.room_id, self.alice, self.bob

        def typing_events(start):
            return [e for e in alice.ephemeral.get(room, [])[start:] if isinstance(e, TypingNoticeEvent)]

        start = alice.mark(room)[1]
        await expect(await bob.client.room_typing(room, True, timeout=30000), RoomTypingResponse, "start typing")
        await alice.wait_for("m.typing naming bob", lambda: any(bob.user_id in e.users for e in typing_events(start)))
        start = alice.mark(room)[1]
        await expect(await bob.client.room_typing(room, False), RoomTypingResponse, "stop typing")
        await alice.wait_for("m.typing without bob",
                             lambda: typing_events(start) and bob.user_id not in typing_events(start)[-1].users)

    async def receipts(self):
        room, alice, bob = self.room_id, self.alice, self.bob

        def receipt_from_bob(start, event_id):
            return any(isinstance(e, ReceiptEvent) and any(
                r.event_id == event_id and r.user_id == bob.user_id and r.receipt_type == "m.read" for r in e.receipts)
                for e in alice.ephemeral.get(room, [])[start:])

        start = alice.mark(room)[1]
        await expect(await bob.client.update_receipt_marker(room, self.text_id), UpdateReceiptMarkerResponse,
                     "POST a read receipt")
        await alice.wait_for(f"bob's m.read receipt on {self.text_id}", lambda: receipt_from_bob(start, self.text_id))

        latest = bob.events(room)[-1]["event_id"]
        start, (_, _, data_start) = alice.mark(room)[1], bob.mark(room)
        await expect(await bob.client.room_read_markers(room, latest, latest), RoomReadMarkersResponse,
                     "POST read_markers (m.fully_read + m.read)")
        await alice.wait_for(f"bob's m.read receipt moving to {latest}", lambda: receipt_from_bob(start, latest))
        await bob.wait_for(f"his m.fully_read room account data at {latest}", lambda: any(
            isinstance(e, FullyReadEvent) and e.event_id == latest for e in bob.room_account_data.get(room, [])[data_start:]))

    async def name_and_topic(self):
        room, alice, bob = self.room_id, self.alice, self.bob
        self.room_name = f"Interop room {self.run_id}"
        self.room_topic = "Where matrix-nio meets Lethe"
        mark = bob.mark(room)[0]
        await expect(await alice.client.room_put_state(room, "m.room.name", {"name": self.room_name}),
                     RoomPutStateResponse, "set m.room.name")
        await expect(await alice.client.room_put_state(room, "m.room.topic", {"topic": self.room_topic}),
                     RoomPutStateResponse, "set m.room.topic")
        await bob.wait_for("the name and topic state events", lambda: bob.find_event(
            room, mark, lambda e: e.get("type") == "m.room.name") and bob.find_event(
            room, mark, lambda e: e.get("type") == "m.room.topic"))
        nio_room = bob.client.rooms[room]
        ensure(nio_room.name == self.room_name, f"nio's room name for bob is {nio_room.name!r}")
        ensure(nio_room.topic == self.room_topic, f"nio's room topic for bob is {nio_room.topic!r}")
        ensure(nio_room.display_name == self.room_name, f"nio's display name for the room is {nio_room.display_name!r}")
        got = await expect(await bob.client.room_get_state_event(room, "m.room.name"), RoomGetStateEventResponse,
                           "GET the m.room.name state")
        ensure(got.content == {"name": self.room_name}, f"GET state m.room.name returned {got.content}")

    async def paginate(self):
        room, alice, bob = self.room_id, self.alice, self.bob
        count = 12
        mark = bob.mark(room)[0]
        bodies = [f"page {i} ({self.run_id})" for i in range(count)]
        for body in bodies:
            await expect(await alice.client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": body}),
                         RoomSendResponse, f"send {body!r}")
        await bob.wait_for("the last paged message", lambda: bob.find_event(
            room, mark, lambda e: e.get("content", {}).get("body") == bodies[-1]))

        # Backwards from "now" (a sync token) in pages of 5, to the beginning of the room.
        token, seen, first_end, pages, reached_create = bob.client.next_batch, [], None, 0, False
        while token and pages < 40:
            page = await expect(await bob.client.room_messages(room, token, direction=MessageDirection.back, limit=5),
                                RoomMessagesResponse, f"GET /messages page {pages + 1} (backwards)")
            pages += 1
            ensure(len(page.chunk) <= 5, f"asked for 5 events, got {len(page.chunk)}")
            for event in page.chunk:
                if isinstance(event, (BadEvent, UnknownBadEvent)):
                    self.unparsed.append(("bob", "/messages", event.source))
                source = event.source
                reached_create |= source.get("type") == "m.room.create"
                if source.get("content", {}).get("body") in bodies:
                    seen.append(source["content"]["body"])
            if first_end is None:
                first_end = page.end
            if not page.chunk or page.end is None:
                break
            ensure(page.end != token, f"/messages returned end == start ({token}) with {len(page.chunk)} events")
            token = page.end
        ensure(seen == list(reversed(bodies)),
               f"backward pagination should return the {count} messages newest first, once each; got {seen}")
        ensure(reached_create, f"backward pagination stopped after {pages} pages without reaching m.room.create")

        # A fresh client's initial sync with a small timeline, then back-pagination from its prev_batch: the way a
        # client fills in history. The two must meet exactly (no gap, no overlap).
        fresh = self.client_with_token(bob.user_id, bob.client.device_id, bob.client.access_token)
        initial = await expect(await fresh.sync(timeout=0, sync_filter={"room": {"timeline": {"limit": 3}}}), SyncResponse,
                               "initial sync with a timeline limit of 3")
        ensure(room in initial.rooms.join, f"bob's initial sync lacks the room: {short(await initial.transport_response.text())}")
        timeline = initial.rooms.join[room].timeline
        tail = [e.source.get("content", {}).get("body") for e in timeline.events]
        ensure(tail == bodies[-3:], f"the initial sync's timeline (limit 3) should be {bodies[-3:]}, got {tail}")
        ensure(timeline.limited is True and timeline.prev_batch,
               f"a cut timeline needs limited: true and a prev_batch; got limited={timeline.limited!r}, prev_batch={timeline.prev_batch!r}")
        page = await expect(await fresh.room_messages(room, timeline.prev_batch, direction=MessageDirection.back, limit=3),
                            RoomMessagesResponse, "GET /messages from the sync's prev_batch")
        before = [e.source.get("content", {}).get("body") for e in page.chunk]
        ensure(before == list(reversed(bodies[-6:-3])),
               f"back-pagination from prev_batch should continue with {list(reversed(bodies[-6:-3]))}, got {before}")

        # Forwards from the end of the first page: the next events after it, oldest first.
        ensure(first_end, "the first backward page had no end token")
        page = await expect(await bob.client.room_messages(room, first_end, direction=MessageDirection.front, limit=3),
                            RoomMessagesResponse, "GET /messages forwards")
        forward = [e.source.get("content", {}).get("body") for e in page.chunk]
        ensure(forward == bodies[count - 5:count - 2],
               f"forward pagination from the first page's end token should give {bodies[count - 5:count - 2]}, got {forward}")

    async def profile(self):
        alice, bob = self.alice, self.bob
        self.display_name = f"Alice Interop {self.run_id}"
        self.avatar = f"mxc://{self.server_name}/interop{self.run_id}"
        await expect(await alice.client.set_displayname(self.display_name), ProfileSetDisplayNameResponse,
                     "set display name")
        await expect(await alice.client.set_avatar(self.avatar), ProfileSetAvatarResponse, "set avatar")
        name = await expect(await bob.client.get_displayname(alice.user_id), ProfileGetDisplayNameResponse,
                            "bob reads alice's display name")
        ensure(name.displayname == self.display_name, f"display name reads back as {name.displayname!r}")
        avatar = await expect(await bob.client.get_avatar(alice.user_id), ProfileGetAvatarResponse,
                              "bob reads alice's avatar")
        ensure(avatar.avatar_url == self.avatar, f"avatar reads back as {avatar.avatar_url!r}")
        whole = await expect(await bob.client.get_profile(alice.user_id), ProfileGetResponse, "bob reads alice's profile")
        ensure(whole.displayname == self.display_name and whole.avatar_url == self.avatar,
               f"profile reads back as displayname {whole.displayname!r}, avatar_url {whole.avatar_url!r}")

    async def media(self):
        # nio 0.20 speaks the legacy /_matrix/media/r0 endpoints, which Lethe serves only while
        # enable_authenticated_media is off (the test config turns it off); the authenticated v1 path is checked raw.
        alice, bob = self.alice, self.bob
        image = png(64, 48)
        upload, _ = await alice.client.upload(lambda *_: image, content_type="image/png",
                                              filename=f"interop-{self.run_id}.png", filesize=len(image))
        upload = await expect(upload, UploadResponse, "POST /_matrix/media/r0/upload")
        uri = upload.content_uri
        ensure(uri.startswith(f"mxc://{self.server_name}/"), f"content_uri is {uri!r}")
        media_id = uri.rsplit("/", 1)[1]

        got = await expect(await bob.client.download(mxc=uri), DownloadResponse, "GET /_matrix/media/r0/download")
        ensure(got.body == image, f"downloaded {len(got.body)} bytes, uploaded {len(image)}; equal: {got.body == image}")
        ensure(got.content_type == "image/png", f"downloaded content type {got.content_type!r}")
        ensure(got.filename == f"interop-{self.run_id}.png", f"downloaded file name {got.filename!r}")

        thumb = await expect(await bob.client.thumbnail(self.server_name, media_id, 32, 32, ResizingMethod.crop),
                             ThumbnailResponse, "GET /_matrix/media/r0/thumbnail")
        ensure(thumb.content_type == "image/png", f"thumbnail content type {thumb.content_type!r}")
        ensure(png_size(thumb.body) == (32, 32), f"thumbnail is {png_size(thumb.body)}, asked for 32x32 crop")

        path = Api._build_path(["media", "download", self.server_name, media_id],
                               {"access_token": bob.client.access_token}, "/_matrix/client/v1")
        resp = await bob.client.send("GET", path)
        body = await resp.read()
        ensure(resp.status == 200 and body == image,
               f"GET /_matrix/client/v1/media/download -> HTTP {resp.status}, {len(body)} bytes")

    async def profile_in_room(self):
        # The spec: a profile change is also sent as an m.room.member event to every room the user is joined to.
        room, alice, bob = self.room_id, self.alice, self.bob
        await bob.wait_for("alice's m.room.member update carrying her new display name and avatar", lambda: bob.find_event(
            room, 0, lambda e: e.get("type") == "m.room.member" and e.get("state_key") == alice.user_id
            and e.get("content", {}).get("membership") == "join"
            and e.get("content", {}).get("displayname") == self.display_name
            and e.get("content", {}).get("avatar_url") == self.avatar))
        shown = bob.client.rooms[room].user_name(alice.user_id)
        ensure(shown == self.display_name, f"nio shows alice in the room as {shown!r}")

    async def directory(self):
        room, alice, bob = self.room_id, self.alice, self.bob

        def listed(body):
            return [r for r in (body or {}).get("chunk") or [] if r.get("room_id") == room]

        async def publish():
            # Directories list rooms people can join (as Synapse's does): open the room first, as a client would.
            await expect(await alice.client.room_put_state(room, "m.room.join_rules", {"join_rule": "public"}),
                         RoomPutStateResponse, "PUT join_rules public")
            status, _, shown = await self.raw(alice.client, "PUT", ["directory", "list", "room", room],
                                              {"visibility": "public"})
            ensure(status == 200, shown)

        async def visibility():
            vis = await expect(await bob.client.room_get_visibility(room), RoomGetVisibilityResponse,
                               "GET /directory/list/room/{roomId}")
            ensure(vis.visibility == "public", f"visibility reads back as {vis.visibility!r}")

        async def list_get():
            # The list needs a token unless the operator sets allow_public_rooms_without_auth (private by default).
            status, body, shown = await self.raw(bob.client, "GET", ["publicRooms"])
            ensure(status == 200 and isinstance(body, dict) and isinstance(body.get("chunk"), list), shown)
            entries = listed(body)
            ensure(entries, f"the published room is not listed: {shown}")
            entry = entries[0]
            ensure(entry.get("name") == self.room_name and entry.get("topic") == self.room_topic,
                   f"the entry has name {entry.get('name')!r}, topic {entry.get('topic')!r}")
            ensure(entry.get("num_joined_members") == 2, f"the entry says {entry.get('num_joined_members')} members")
            ensure(isinstance(entry.get("world_readable"), bool) and isinstance(entry.get("guest_can_join"), bool),
                   f"the entry lacks the required world_readable/guest_can_join booleans: {short(entry)}")

        async def list_search():
            status, body, shown = await self.raw(bob.client, "POST", ["publicRooms"],
                                                 {"limit": 10, "filter": {"generic_search_term": self.run_id}})
            ensure(status == 200 and isinstance(body, dict) and listed(body),
                   f"a search for a word of the room's name does not find it: {shown}")

        async def unpublish():
            status, _, shown = await self.raw(alice.client, "PUT", ["directory", "list", "room", room],
                                              {"visibility": "private"})
            ensure(status == 200, shown)
            status, body, shown = await self.raw(bob.client, "GET", ["publicRooms"])
            ensure(status == 200 and isinstance(body, dict) and not listed(body),
                   f"the room is still listed after unpublishing: {shown}")

        await self.parts([("publish (PUT /directory/list/room/{roomId})", publish),
                          ("read the visibility back", visibility),
                          ("GET /publicRooms lists it", list_get),
                          ("POST /publicRooms search finds it", list_search),
                          ("unpublish removes it from /publicRooms", unpublish)])

    async def alias(self):
        room, alice, bob = self.room_id, self.alice, self.bob
        alias = f"#interop-{self.run_id}:{self.server_name}"

        async def create():
            await expect(await alice.client.room_put_alias(alias, room), RoomPutAliasResponse, f"PUT {alias}")

        async def resolve():
            resolved = await expect(await bob.client.room_resolve_alias(alias), RoomResolveAliasResponse,
                                    f"GET {alias}")
            ensure(resolved.room_id == room, f"{alias} resolves to {resolved.room_id!r}, expected {room}")
            ensure(self.server_name in resolved.servers, f"the alias's servers {resolved.servers} lack {self.server_name}")

        async def taken():
            await expect_error(await bob.client.room_put_alias(alias, room), 409, None, f"PUT {alias} again")

        async def canonical():
            mark = bob.mark(room)[0]
            await expect(await alice.client.room_put_state(room, "m.room.canonical_alias", {"alias": alias}),
                         RoomPutStateResponse, "set m.room.canonical_alias")
            await bob.wait_for("the canonical alias", lambda: bob.find_event(
                room, mark, lambda e: e.get("type") == "m.room.canonical_alias"))
            ensure(bob.client.rooms[room].canonical_alias == alias,
                   f"nio's canonical alias for bob is {bob.client.rooms[room].canonical_alias!r}")

        async def delete():
            await expect(await alice.client.room_delete_alias(alias), RoomDeleteAliasResponse, f"DELETE {alias}")
            await expect_error(await bob.client.room_resolve_alias(alias), 404, "M_NOT_FOUND", "resolve the deleted alias")

        await self.parts([("create (PUT /directory/room/{alias})", create),
                          ("resolve (GET /directory/room/{alias})", resolve),
                          ("a taken alias is refused with 409", taken),
                          ("set it as m.room.canonical_alias", canonical),
                          ("delete it; it no longer resolves", delete)])

    async def leave_and_forget(self):
        room, alice, bob = self.room_id, self.alice, self.bob
        mark = alice.mark(room)[0]
        await expect(await bob.client.room_leave(room), RoomLeaveResponse, "bob leaves")
        await alice.wait_for("bob's leave", lambda: alice.find_event(
            room, mark, lambda e: e.get("type") == "m.room.member" and e.get("state_key") == bob.user_id
            and e.get("content", {}).get("membership") == "leave"))
        await bob.wait_for("the room in his rooms.leave", lambda: room in bob.left)
        joined = await expect(await bob.client.joined_rooms(), JoinedRoomsResponse, "joined_rooms after leaving")
        ensure(room not in joined.rooms, f"joined_rooms still lists {room} after leaving")

        include_leave = {"room": {"include_leave": True}}
        fresh = self.client_with_token(bob.user_id, bob.client.device_id, bob.client.access_token)
        initial = await expect(await fresh.sync(timeout=0, sync_filter=include_leave), SyncResponse,
                               "initial sync with include_leave, before forgetting")
        ensure(room in initial.rooms.leave,
               f"an initial sync with include_leave should list the left room; it has leave={list(initial.rooms.leave)}")

        await expect(await bob.client.room_forget(room), RoomForgetResponse, "bob forgets the room")
        fresh = self.client_with_token(bob.user_id, bob.client.device_id, bob.client.access_token)
        initial = await expect(await fresh.sync(timeout=0, sync_filter=include_leave), SyncResponse,
                               "initial sync with include_leave, after forgetting")
        ensure(room not in initial.rooms.leave and room not in initial.rooms.join and room not in initial.rooms.invite,
               "a forgotten room still appears in an initial sync with include_leave")

    async def logout(self):
        alice, bob = self.alice, self.bob
        token = alice.client.access_token
        await expect(await alice.client.logout(), LogoutResponse, "alice logs out")
        dead = self.client_with_token(alice.user_id, "", token)
        await expect_error(await dead.whoami(), 401, "M_UNKNOWN_TOKEN", "whoami with alice's logged-out token")
        still = self.client_with_token(*alice.registration)
        await expect(await still.whoami(), WhoamiResponse, "whoami with alice's other (registration) session")

        token = bob.client.access_token
        await expect(await bob.client.logout(all_devices=True), LogoutResponse, "bob logs out everywhere")
        for what, old in (("login", token), ("registration", bob.registration[2])):
            dead = self.client_with_token(bob.user_id, "", old)
            await expect_error(await dead.whoami(), 401, "M_UNKNOWN_TOKEN", f"whoami with bob's {what} token after logout/all")

    async def all_parsed(self):
        bad = []
        for who, where, source in self.unparsed:
            if nio_predates_v11_create(source):
                note = ("matrix-nio 0.20 rejects m.room.create without content.creator, which room version 11 "
                        "removed (the creator is the sender); not a server fault")
                if note not in self.notes:
                    self.note(note)
            else:
                bad.append(f"{who} via {where}: {short(source, 600)}")
        ensure(not bad, "matrix-nio could not parse these events (BadEvent): " + "; ".join(bad))

    # ----- summary -----

    def summary(self):
        passed = [n for n, o, _ in self.results if o == "passed"]
        failed = [(n, d) for n, o, d in self.results if o == "failed"]
        skipped = [(n, d) for n, o, d in self.results if o == "skipped"]
        print("\n==== matrix-nio walkthrough summary ====")
        for name, outcome, _ in self.results:
            print(f"  {outcome.upper():8} {name}")
        for note in self.notes:
            print(f"  NOTE: {note}")
        for name, detail in failed:
            print(f"\nFAILED: {name}\n  {detail}")
        print(f"\n{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
        return 0 if not failed and not skipped else 1

    async def close(self):
        for client in self.clients:
            await client.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="homeserver base URL, e.g. http://127.0.0.1:8008")
    parser.add_argument("--budget", type=float, default=120,
                        help="seconds after which remaining steps are skipped (the summary still prints)")
    parser.add_argument("--require-bundled-aggregations", action="store_true",
                        help="fail, rather than note, when edits are not bundled into unsigned.m.relations")
    args = parser.parse_args()
    if urlparse(args.url).scheme not in ("http", "https"):
        parser.error("the URL must start with http:// or https://")
    walk = Walkthrough(args.url, args.budget, args.require_bundled_aggregations)
    print(f"matrix-nio walkthrough against {walk.url} (run {walk.run_id})", flush=True)
    try:
        await walk.run()
    finally:
        await walk.close()
    return walk.summary()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
