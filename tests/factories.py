"""Plain-data factories for tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from warnbot.model import Delivery, Incident, Level, LevelPolicy, Responder, Tier, TierPolicy

POLICY = LevelPolicy(
    {t: TierPolicy(ack_window_s=600, repeat_count=1, repeat_interval_s=300) for t in Tier}
)


def person(
    key: str,
    tier: Tier = Tier.VILLAGE,
    region: str = "449901001001",
    phone: str | None = None,
    superior: str | None = None,
    roles: tuple[str, ...] = (),
) -> Responder:
    number = phone or f"+86170000{abs(hash(key)) % 100000:05d}"
    return Responder(
        key=key,
        name=f"测试{key}",
        tier=tier,
        region_code=region,
        phones=(number,),
        roles=roles,
        superior=superior,
    )


def incident(
    now: datetime, level: Level = Level.II, region: str = "449901", policy: LevelPolicy = POLICY
) -> Incident:
    return Incident(
        id=0,
        key=f"暴雨@{region}",
        hazard="暴雨",
        region_code=region,
        level=level,
        status="open",
        opened_at=now,
        headline="示例县暴雨橙色预警",
        policy=policy,
        source="test",
    )


def delivery(p: Responder, now: datetime, window_s: float = 600) -> Delivery:
    return Delivery(p, "console", p.phones[0], p.tier, now + timedelta(seconds=window_s))
