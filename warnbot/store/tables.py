"""SQLAlchemy Core tables. Alembic migrations create them; this is the schema's reading copy.

Names follow the glossary: a *request* is one 叫应 call to one person for one
incident (it is confirmed by an *ack*); an *outbox* row is one message to one
address; an *escalation* row is a fired ladder step, keyed so it fires once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware: datetime = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return aware.astimezone(UTC)


metadata = sa.MetaData()

responders = sa.Table(
    "responders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("region_code", sa.String(12), nullable=False, index=True),
    sa.Column("phones", sa.JSON, nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("superior", sa.String(64)),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("chat_ids", sa.JSON),  # {channel: id}; added by migration 0005
)

# phone → person, for attributing SMS replies; one number belongs to one person.
responder_phones = sa.Table(
    "responder_phones",
    metadata,
    sa.Column("phone", sa.String(20), primary_key=True),
    sa.Column("responder_key", sa.String(64), nullable=False),
)

warnings = sa.Table(
    "warnings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed", sa.String(100), nullable=False),
    sa.Column("sender", sa.String(300), nullable=False),
    sa.Column("identifier", sa.String(300), nullable=False),
    sa.Column("msg_type", sa.String(16), nullable=False),
    sa.Column("event", sa.String(300), nullable=False),
    sa.Column("sent", UTCDateTime, nullable=False),
    sa.Column("expires", UTCDateTime),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("sender", "identifier", name="uq_warnings_sender_identifier"),
)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(200), nullable=False, index=True),
    sa.Column("hazard", sa.String(100), nullable=False),
    sa.Column("region_code", sa.String(12), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("drill", sa.Boolean, nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("warning_key", sa.String(700)),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("lifted_at", UTCDateTime),
    # One open incident per key: racing decisions meet here (added by migration 0013).
    sa.Index(
        "uq_incidents_open_key",
        "key",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("responder_key", sa.String(64), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("reply_code", sa.String(8), nullable=False),
    # pending|delivered|confirmed|escalated|unreachable|superseded
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.Column("deadline", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("escalated_at", UTCDateTime),
    # 叫应 ladder (0004): delivery, giving up, the level asked under and its frozen tier
    # policy (an upgrade asks again under the new level), muster
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("unreachable_at", UTCDateTime),
    sa.Column("level", sa.Integer),
    sa.Column("policy", sa.JSON),
    sa.Column("muster_deadline", UTCDateTime),
    sa.Column("arrived_at", UTCDateTime),
    sa.UniqueConstraint(
        "incident_id", "responder_key", "level", name="uq_requests_incident_responder_level"
    ),
    sa.Index("ix_requests_status_deadline", "status", "deadline"),
)

acks = sa.Table(
    "acks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.ForeignKey("requests.id"), nullable=False, unique=True),
    sa.Column("path", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("incident_id", sa.Integer),
    sa.Column("responder_key", sa.String(64)),
    sa.Column("mentions", sa.JSON),
    sa.Column("ack_token", sa.String(100)),
    # lane: 0 asks responsible persons and escalates; 1 is public tip SMS, which waits
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False),  # queued|sending|sent|failed
    # set when a claim finds the row still "sending" after its lease: a crash may have
    # come after the provider took it, so it is reconciled, not blindly sent again
    sa.Column("in_doubt", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    # what the provider later says (Twilio StatusCallback): delivered, undelivered, failed …
    sa.Column("provider_status", sa.String(16)),
    sa.Column("provider_error", sa.String(64)),  # Aliyun's codes are long: MOBILE_NOT_ON_SERVICE
    sa.Index("ix_outbox_claim", "status", "priority", "next_attempt_at"),
    sa.Index("ix_outbox_provider_id", "provider_id"),
)

# Delivery reports that arrived before their send was recorded: a provider may call
# back while the sender is still waiting for its answer, or before the sender writes
# its batch's ids down. Kept here until the id is recorded, then applied (and deleted).
early_reports = sa.Table(
    "early_reports",
    metadata,
    sa.Column("provider_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("error", sa.String(64)),
    sa.Column("received_at", UTCDateTime, nullable=False, index=True),
)

# Rate limits shared by every process on the database (GCRA): ``tat_s`` is the
# epoch second at which the next message may go; each send books its slot.
rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("tat_s", sa.Float, nullable=False),
)

# Permanent failures, recorded on the person: an office must fix the roster.
address_failures = sa.Table(
    "address_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("responder_key", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("code", sa.String(32)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("incident_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("fired_at", UTCDateTime, nullable=False),
)

feed_health = sa.Table(
    "feed_health",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("last_success", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", UTCDateTime),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    # conditional GET: what the server last said, so a restart does not refetch
    sa.Column("etag", sa.String(300)),
    sa.Column("last_modified", sa.String(100)),
    # the silence episode already reported to the duty officer (keyed by last_success)
    sa.Column("silence_reported", sa.String(64)),
)

# Atom/RSS entries already taken in, so an index poll fetches only new ones.
feed_entries = sa.Table(
    "feed_entries",
    metadata,
    sa.Column("feed", sa.String(100), primary_key=True),
    sa.Column("entry_id", sa.String(500), primary_key=True),
    sa.Column("seen_at", UTCDateTime, nullable=False),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("station", sa.String(200), nullable=False),
    sa.Column("quantity", sa.String(64), nullable=False),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("station_name", sa.String(200), nullable=False, default=""),
    sa.Column("region_code", sa.String(12), nullable=False, default=""),
    sa.Column("source", sa.String(100), nullable=False, default=""),
    sa.UniqueConstraint("station", "quantity", "time", name="uq_observations_reading"),
    sa.Index("ix_observations_time", "time"),
)

# CAP documents warnbot published for an incident, in order: an Update or
# Cancel references the previous one.
cap_documents = sa.Table(
    "cap_documents",
    metadata,
    sa.Column("incident_id", sa.Integer, primary_key=True),
    sa.Column("sequence", sa.Integer, primary_key=True),
    sa.Column("identifier", sa.String(100), nullable=False),
    sa.Column("reference", sa.String(500), nullable=False),  # "sender,identifier,sent"
    sa.Column("sent", UTCDateTime, nullable=False),
    sa.Column("msg_type", sa.String(16), nullable=False),
    sa.Column("xml", sa.Text, nullable=False),
    # 0011: the incident event this document publishes; one document per event, so a
    # follow-up run again after a crash publishes nothing twice
    sa.Column("event_id", sa.Integer),
    sa.UniqueConstraint("event_id", name="uq_cap_documents_event_id"),
)

keyring = sa.Table(
    "keyring",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

# ---------------------------------------------------------------------------
# 叫应 ladder tables (migration 0004) go below this line.

# Every answer a person gave, verbatim, in order: the confirmation (also in ``acks``),
# a muster arrival, a repeat; ``by_name`` names the duty officer who took it by phone.
# Reports back (回执) are parsed from ``text``.
answers = sa.Table(
    "answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.ForeignKey("requests.id"), nullable=False, index=True),
    sa.Column("responder_key", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # confirm|arrive|again
    sa.Column("path", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("by_name", sa.String(100), nullable=False),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)


# ---------------------------------------------------------------------------
# Roster tables: public audiences, duty rota, transfer lists (migration 0005).

# A public audience 受众: residents who opted in to tip SMS 提示短信, by region. Kept
# apart from responders: they are never asked to confirm and never escalate.
audiences = sa.Table(
    "audiences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
)

# One number once per audience; region codes canonical (449901, 449901001, …), so a
# region's numbers are those whose code starts with its prefix.
audience_members = sa.Table(
    "audience_members",
    metadata,
    sa.Column("audience_id", sa.Integer, primary_key=True),
    sa.Column("phone", sa.String(20), primary_key=True),
    sa.Column("region_code", sa.String(12), nullable=False),
)


# ---------------------------------------------------------------------------
# Console tables: accounts, sessions, audit log (migration 0006).

# Console accounts: roles viewer < duty_officer < admin; argon2 hashes only. Since 0010
# failed sign-ins are counted per name in ``sign_in_throttle``; ``failures`` and
# ``locked_until`` here are no longer written. ``active`` false: disabled, refused.
console_accounts = sa.Table(
    "console_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Sessions and API tokens are kept as SHA-256 digests: a copy of the database opens nothing.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("console_accounts.id"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("console_accounts.id"), nullable=False),
    sa.Column("label", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),  # 0010: a revoked token opens nothing
)

# Who did what, when: every console and API action, refusals included.
console_audit = sa.Table(
    "console_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    # 0010: how it came: console, api (a bearer token) or cli (the shell)
    sa.Column("via", sa.String(16), nullable=False, server_default="console"),
    sa.Index("ix_console_audit_at", "at"),
)


# ---------------------------------------------------------------------------
# Reports back (回执), transfer-list progress, drills (migration 0007).

# One report back (回执上报) per row, verbatim, with the figures read from it; keyed
# to the request it answers. ``dedup_key`` (a provider message id) makes a retried
# webhook record once.
reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, nullable=False, index=True),
    sa.Column("request_id", sa.Integer),
    sa.Column("responder_key", sa.String(64), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("region_code", sa.String(12), nullable=False),
    sa.Column("path", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("code", sa.String(8)),
    sa.Column("households_moved", sa.Integer),
    sa.Column("people_moved", sa.Integer),
    sa.Column("teams_out", sa.Integer),
    sa.Column("staff_out", sa.Integer),
    sa.Column("patrols", sa.Integer),
    sa.Column("arrived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cumulative", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("entries", sa.JSON, nullable=False),
    sa.Column("all_moved", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("dedup_key", sa.String(200), unique=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

# Transfer lists (转移清单): the households or vulnerable people one person must move,
# each with its route and destination (安置点). ``no`` is the entry's number in that
# person's list, the one they answer with ("已转移 3号").
transfer_entries = sa.Table(
    "transfer_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("responder_key", sa.String(64), nullable=False),
    sa.Column("no", sa.String(8), nullable=False),
    sa.Column("household", sa.String(200), nullable=False),
    sa.Column("people", sa.Integer, nullable=False),
    sa.Column("phone", sa.String(20)),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("destination", sa.String(300), nullable=False),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("source", sa.String(500), nullable=False),  # FILE:LINE it came from
    sa.UniqueConstraint("responder_key", "no", name="uq_transfer_entries_responder_no"),
)

# An entry reported moved in one incident; the first mark counts.
transfer_marks = sa.Table(
    "transfer_marks",
    metadata,
    sa.Column("incident_id", sa.Integer, primary_key=True),
    sa.Column("responder_key", sa.String(64), primary_key=True),
    sa.Column("no", sa.String(8), primary_key=True),
    sa.Column("by", sa.String(200), nullable=False),  # the person, or the duty officer's name
    sa.Column("via", sa.String(16), nullable=False),  # report | duty_officer
    sa.Column("report_id", sa.Integer),
    sa.Column("moved_at", UTCDateTime, nullable=False),
)

# Drill plans (演练): an unannounced drill fires at ``fire_at``, drawn once from
# ``seed`` inside [window_start, window_end]; claiming sets ``status`` to fired.
drill_plans = sa.Table(
    "drill_plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("fire_at", UTCDateTime, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("hazard", sa.String(100), nullable=False),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("regions", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # scheduled|fired|cancelled
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("incident_ids", sa.JSON),
    sa.Index("ix_drill_plans_status_fire_at", "status", "fire_at"),
)


# ---------------------------------------------------------------------------
# Ladder follow-ups (migration 0009).

# What was last imported of a list an office keeps (``name``: ``roster``): the content's
# SHA-256, a version that goes up with every import (every process reloads when it
# changes) and, apart, the configured file's content when it was last applied, so a
# restart re-reads the configured file only when it changed and never undoes
# ``warnbot roster import``.
imports = sa.Table(
    "imports",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),  # config | import
    sa.Column("config_sha256", sa.String(64)),
    sa.Column("imported_at", UTCDateTime, nullable=False),
)

# Residents who replied 退订 / TD / STOP: removed from every public audience, and kept
# out of later imports unless the import says to take them back (``--include-opted-out``).
opt_outs = sa.Table(
    "opt_outs",
    metadata,
    sa.Column("phone", sa.String(20), primary_key=True),
    sa.Column("opted_out_at", UTCDateTime, nullable=False),
    sa.Column("via", sa.String(16), nullable=False),  # sms | import (cleared) …
)

# Incident events, sign-in throttle, token revocation, metrics (migration 0010).

# Every incident transition (open, upgrade, update, downgrade, lift) as applied, with
# the level before and after, the reason and who or what caused it (a feed, expiry,
# ``console:NAME``, ``api:NAME``): the incident's timeline reads these.
incident_events = sa.Table(
    "incident_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("previous_level", sa.Integer),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("warning_key", sa.String(300)),
    sa.Column("at", UTCDateTime, nullable=False),
    # 0011: the event is the journal of its own follow-ups (asks, notices, alerts, tips,
    # CAP): done_at is set when they all ran; an event without it is followed up again
    sa.Column("done_at", UTCDateTime),
    sa.Column("detail", sa.JSON),  # what the follow-up needs beyond the incident
    sa.Index("ix_incident_events_unfinished", "done_at", "at"),
)

# Failed sign-ins counted per name typed, whether or not an account has that name, so
# a lock-out answers the same for both and tells nobody which names exist.
sign_in_throttle = sa.Table(
    "sign_in_throttle",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("last_failure_at", UTCDateTime, nullable=False),
)

# /metrics without whole-table scans: what no longer changes is folded into totals once
# (acks as they come; outbox rows once settled) and each fold's high-water mark kept, so
# a scrape reads only rows newer than the marks. Shared by every process.
metric_totals = sa.Table(
    "metric_totals",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("labels", sa.String(300), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

metric_marks = sa.Table(
    "metric_marks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_id", sa.BigInteger, nullable=False),
)
