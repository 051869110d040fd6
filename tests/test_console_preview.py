"""The manual response's preview shows what confirming really sends: each person's own
ask (template, reply code, ack link of the real length, muster line, 转移清单), chat
group notices, public tip SMS, segments, cost and time at the configured rates."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from tests.console_helpers import MANUAL
from warnbot import sms
from warnbot.app import App
from warnbot.model import Tier
from warnbot.settings import GroupRoute, RateLimit
from warnbot.store.tables import outbox
from warnbot.transfers import TransferEntry

pytest_plugins = ("tests.console_fixtures",)

TOKEN = re.compile(r"/a/[0-9a-z]+\.[A-Za-z0-9_-]{12}")


async def _preview(client: TestClient, csrf: str, **changes: str) -> str:
    resp = await client.post("/respond/preview", data={**MANUAL, **changes, "csrf": csrf})
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def _confirm(client: TestClient, csrf: str, **changes: str) -> int:
    form = {**MANUAL, **changes, "csrf": csrf}
    resp = await client.post("/respond/confirm", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def _sample(page: str, line: str) -> str:
    pattern = rf'data-sample="{re.escape(line)}">.*?<pre class="sms">(.*?)</pre>'
    found = re.search(pattern, page, re.S)
    assert found, f"no sample {line}"
    return html.unescape(found.group(1))


def _cell(page: str, line: str, cell: str) -> str:
    row = re.search(rf'<tr data-line="{re.escape(line)}">(.*?)</tr>', page, re.S)
    assert row, f"no line {line}"
    found = re.search(rf'data-cell="{cell}">(.*?)</td>', row.group(1), re.S)
    assert found
    return html.unescape(found.group(1)).strip()


async def _outbox(app: App) -> list[tuple[str, str, str | None]]:
    query = sa.select(outbox.c.key, outbox.c.body, outbox.c.responder_key).order_by(outbox.c.id)
    async with app.store.engine.connect() as conn:
        return [(k, b, r) for k, b, r in (await conn.execute(query)).all()]


async def _body_of(app: App, responder_key: str) -> str:
    rows = await _outbox(app)
    return next(b for k, b, r in rows if r == responder_key and k.startswith("request"))


def _same_but_token(preview: str, sent: str) -> None:
    """Equal texts once the link token is set aside, and the tokens equally long."""
    assert TOKEN.sub("/a/TOKEN", preview) == TOKEN.sub("/a/TOKEN", sent)
    assert [len(t) for t in TOKEN.findall(preview)] == [len(t) for t in TOKEN.findall(sent)]


async def test_each_tiers_sample_is_the_ask_then_sent_with_a_link_as_long(
    app: App, client: TestClient, officer: str
) -> None:
    page = await _preview(client, officer)
    samples = {t: _sample(page, f"ask:twilio:{t}") for t in ("county", "township", "village")}
    await _confirm(client, officer)
    # the first person of each tier, top tier first and then by key
    for tier, key in (("county", "X01"), ("township", "T01"), ("village", "V01")):
        _same_but_token(samples[tier], await _body_of(app, key))


async def test_with_another_incident_waiting_the_sample_shows_the_code_then_sent(
    app: App, client: TestClient, officer: str
) -> None:
    """Everyone already has an ask waiting (code 11): the next ask is code 12, and the
    preview shows "12" as the message will (it showed "2", a code nobody is given)."""
    await _confirm(client, officer, hazard="台风")
    page = await _preview(client, officer)
    sample = _sample(page, "ask:twilio:county")
    assert '回复"12"' in sample
    await _confirm(client, officer)
    sent = [b for k, b, r in await _outbox(app) if r == "X01" and k.startswith("request")]
    _same_but_token(sample, sent[-1])


async def test_the_segment_count_per_message_and_in_all_is_exact(
    app: App, client: TestClient, officer: str
) -> None:
    page = await _preview(client, officer)
    # "【Ⅲ级响应】示例县暴雨，启动Ⅲ级应急响应。陈立新(示例)，请回复"1"确认收到，或点 https://…"
    # is 87 UCS-2 characters, more than the 70 of one part: every one of the ten asks is two
    assert _cell(page, "ask:twilio", "messages") == "10"
    assert _cell(page, "ask:twilio", "segments-each") == "2"
    assert _cell(page, "ask:twilio", "segments") == "20"
    await _confirm(client, officer)
    sent = [b for k, b, _ in await _outbox(app) if k.startswith("request")]
    assert [sms.segments(b) for b in sent] == [2] * 10


async def test_without_a_rate_limit_the_preview_says_so(
    app: App, client: TestClient, officer: str
) -> None:
    page = await _preview(client, officer)
    assert _cell(page, "ask:twilio", "time") == "未配置限速：按服务商接收速度发送"
    assert _cell(page, "ask:twilio", "cost-each") == "未配置单价"


async def test_the_muster_line_and_transfer_list_are_in_the_asks_they_belong_to(
    app: App, client: TestClient, officer: str
) -> None:
    policy = {**app.settings.policy}
    village = policy["Ⅲ"][Tier.VILLAGE].model_copy(update={"muster_s": 1800.0})
    policy["Ⅲ"] = {**policy["Ⅲ"], Tier.VILLAGE: village}
    app.settings = app.settings.model_copy(update={"policy": policy, "transfer_levels": ["Ⅲ"]})
    entry = TransferEntry("V01", "1", "独居老人刘某", 1, "沿村道向北", "村委会避险点")
    await app.store.sync_transfer_lists([entry])
    page = await _preview(client, officer)
    village_ask = _sample(page, "ask:twilio:village")
    assert "请30分钟内到岗集结" in village_ask and "独居老人刘某" in village_ask
    assert "到岗集结" not in _sample(page, "ask:twilio:county")
    await _confirm(client, officer)
    _same_but_token(village_ask, await _body_of(app, "V01"))


async def test_chat_group_notices_and_public_tips_are_previewed_and_then_sent(
    app: App, client: TestClient, officer: str
) -> None:
    group = GroupRoute(channel="wecom", group="三防工作群", tiers=[Tier.TOWNSHIP, Tier.VILLAGE])
    app.settings = app.settings.model_copy(
        update={"groups": [group], "tips_audience": "示例县居民"}
    )
    residents = {
        "+8617000009001": "449901001001",
        "+8617000009002": "449901002",
        "+8617000009003": "449901",
        "+8617000009004": "449902",  # another county: not reached
    }
    await app.store.replace_audience("示例县居民", residents, "test", app.clock())
    page = await _preview(client, officer)
    assert _cell(page, "group:wecom", "messages") == "2"
    assert _cell(page, "group:wecom", "segments") == "—"
    assert "吴静安(示例)、郑远山(示例)、Alex Morgan (demo)" in _sample(page, "group:wecom:township")
    assert _cell(page, "tip:twilio", "messages") == "3"
    tip = _sample(page, "tip:twilio:")
    await _confirm(client, officer)
    rows = await _outbox(app)
    assert sorted(b for k, b, _ in rows if k.startswith("group")) == sorted(
        [_sample(page, "group:wecom:township"), _sample(page, "group:wecom:village")]
    )
    assert [b for k, b, _ in rows if k.startswith("tip")] == [tip] * 3


async def test_a_drill_previews_no_public_tips(app: App, client: TestClient, officer: str) -> None:
    app.settings = app.settings.model_copy(update={"tips_audience": "示例县居民"})
    await app.store.replace_audience("示例县居民", {"+8617000009001": "449901"}, "t", app.clock())
    page = await _preview(client, officer, drill="on")
    assert 'data-line="tip:' not in page
    assert _sample(page, "ask:twilio:county").startswith("【演练】")


async def test_cost_and_time_to_send_follow_the_configured_rate_asks_first_then_tips(
    app: App, client: TestClient, officer: str
) -> None:
    limit = RateLimit(rate_per_s=2, per_segment=True, price_per_segment=0.05)
    app.settings = app.settings.model_copy(
        update={"rate_limits": {"twilio": limit}, "tips_audience": "示例县居民"}
    )
    await app.store.replace_audience("示例县居民", {"+8617000009001": "449901"}, "t", app.clock())
    page = await _preview(client, officer)
    tip_parts = sms.segments(_sample(page, "tip:twilio:"))
    assert _cell(page, "ask:twilio", "cost-each") == "0.100"
    assert _cell(page, "ask:twilio", "cost") == "1.00"
    assert _cell(page, "ask:twilio", "time") == f"{20 / limit.effective_per_s:.1f} 秒"
    # the tips wait in lane 1 until every ask is out
    done_s = (20 + tip_parts) / limit.effective_per_s
    assert _cell(page, "tip:twilio", "time") == f"{done_s:.1f} 秒"
    assert f'id="preview-cost">{(20 + tip_parts) * 0.05:.2f}<' in page
    assert f'id="preview-time">{done_s:.1f} 秒<' in page


async def test_the_time_to_send_follows_a_bucket_named_unlike_its_channel(
    app: App, client: TestClient, officer: str
) -> None:
    """``[rate_limits.短信账户] channels = ["twilio"]``: the dispatcher paces Twilio SMS by
    it, so the preview does too (it used to look up a limit named "twilio" only)."""
    account = RateLimit(rate_per_s=2, per_segment=True, price_per_segment=0.05, channels=["twilio"])
    app.settings = app.settings.model_copy(update={"rate_limits": {"短信账户": account}})
    page = await _preview(client, officer)
    assert _cell(page, "ask:twilio", "time") == f"{20 / account.effective_per_s:.1f} 秒"
    assert _cell(page, "ask:twilio", "cost") == "1.00"


async def test_a_per_sender_limit_paces_the_notices_to_one_group(
    app: App, client: TestClient, officer: str
) -> None:
    """Each WeCom robot takes 20 a minute: two groups get two tiers' notices each, and
    each group's two take two slots of its own bucket — not four of one."""
    robot = RateLimit.model_validate({"rate_per_min": 20, "per_sender": True})
    tiers = [Tier.TOWNSHIP, Tier.VILLAGE]
    groups = [GroupRoute(channel="wecom", group=g, tiers=tiers) for g in ("三防工作群", "镇村群")]
    app.settings = app.settings.model_copy(
        update={"groups": groups, "rate_limits": {"wecom": robot}}
    )
    page = await _preview(client, officer)
    assert _cell(page, "group:wecom", "messages") == "4"
    assert _cell(page, "group:wecom", "time") == f"{2 / robot.effective_per_s:.1f} 秒"


async def _asked(app: App) -> list[str]:
    return sorted(r for k, _, r in await _outbox(app) if k.startswith("request") and r)


async def test_a_village_chosen_with_its_township_adds_nothing_and_nobody_is_asked_twice(
    app: App, client: TestClient, officer: str
) -> None:
    both = {"region": ["449901001", "449901001001"]}
    resp = await client.post("/respond/preview", data={**MANUAL, **both, "csrf": officer})
    page = await resp.text()
    # county X01 X02, township T01, villages V01 V02: five people, once each
    assert 'id="preview-total">5<' in page
    assert "一镇南村 位于 示例县第一镇 之内" in html.unescape(page)
    resp = await client.post(
        "/respond/confirm", data={**MANUAL, **both, "csrf": officer}, allow_redirects=False
    )
    assert resp.status == 303
    opened = await app.store.open_incidents()
    assert [i.region_code for i, _ in opened] == ["449901001"]
    assert await _asked(app) == ["T01", "V01", "V02", "X01", "X02"]


async def test_several_villages_open_one_incident_each_and_ask_those_above_them_once(
    app: App, client: TestClient, officer: str
) -> None:
    two = {"region": ["449901002001", "449901001001"]}
    resp = await client.post("/respond/preview", data={**MANUAL, **two, "csrf": officer})
    page = html.unescape(await resp.text())
    # county X01 X02 once; each village's township head and village person: 2 + 2 + 2
    assert 'id="preview-total">6<' in page
    assert "陈立新(示例)（在 一镇南村 的响应中）" in page
    resp = await client.post(
        "/respond/confirm", data={**MANUAL, **two, "csrf": officer}, allow_redirects=False
    )
    assert resp.status == 303
    opened = {i.region_code: i.id for i, _ in await app.store.open_incidents()}
    assert sorted(opened) == ["449901001001", "449901002001"]
    assert await _asked(app) == ["T01", "T02", "V01", "V03", "X01", "X02"]
    first = {r.responder_key for r in await app.store.requests_of(opened["449901001001"])}
    second = {r.responder_key for r in await app.store.requests_of(opened["449901002001"])}
    assert (first, second) == ({"X01", "X02", "T01", "V01"}, {"T02", "V03"})
