"""Imports (SRT, WebVTT, Sourcebook JSON) and exports (txt, md, srt, vtt, json, docx).

Every API test runs on SQLite and PostgreSQL (the ``api`` fixture). SRT and WebVTT
exports are parsed back with this project's importers and with the independent ``srt``
and ``webvtt-py`` packages.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from pipelines.export import FORMATS, hms
from service import importers
from service.models.consent import RestrictionLevel
from tests.factories import add_transcript, interview, new_recording, person, restrict

SRT_TIMING = re.compile(r"^\d{2}:[0-5]\d:[0-5]\d,\d{3} --> \d{2}:[0-5]\d:[0-5]\d,\d{3}$")
VTT_TIMING = re.compile(r"^\d{2}:[0-5]\d:[0-5]\d\.\d{3} --> \d{2}:[0-5]\d:[0-5]\d\.\d{3}$")


def people(api) -> dict[str, int]:
    rows = api.client.get("/api/v1/people", headers=api.headers("researcher")).json()["data"]
    return {p["name"]: p["id"] for p in rows}


def export(api, rid: int, fmt: str, role: str = "researcher", **params):
    return api.client.get(f"/api/v1/recordings/{rid}/transcript/export",
                          params={"format": fmt, **params}, headers=api.headers(role))


def post_import(api, rid: int, body: bytes | str, content_type: str | None,
                role: str = "researcher", **params):
    data = body.encode() if isinstance(body, str) else body
    headers = api.headers(role) | ({"Content-Type": content_type} if content_type else {})
    return api.client.post(f"/api/v1/recordings/{rid}/transcript", content=data,
                           headers=headers, params=params)


def transcript(api, rid: int, role: str = "researcher", **params) -> dict:
    r = api.client.get(f"/api/v1/recordings/{rid}/transcript", params=params,
                       headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def docx_text(content: bytes) -> tuple[str, str, dict[str, str]]:
    """(body text, page header text, metadata table) of a Word file."""
    from docx import Document

    doc = Document(io.BytesIO(content))
    body = "\n".join(p.text for p in doc.paragraphs)
    header = "\n".join(p.text for p in doc.sections[0].header.paragraphs)
    table = {row.cells[0].text: row.cells[1].text for row in doc.tables[0].rows}
    return body, header, table


def texts_of_every_format(api, rid: int, role: str = "researcher") -> dict[str, str]:
    out = {}
    for fmt in FORMATS:
        r = export(api, rid, fmt, role=role)
        assert r.status_code == 200, (fmt, r.text)
        out[fmt] = docx_text(r.content)[0] if fmt == "docx" else r.content.decode("utf-8")
    return out


# ----------------------------------------------------------------------------- exports

def test_every_export_shows_names_and_follows_a_remap(api, tmp_path: Path) -> None:
    rid, segs = interview(api, tmp_path, split_label=False)
    ids = people(api)
    assert api.client.put(f"/api/v1/recordings/{rid}/speakers",
                          json={"SPEAKER_00": ids["林知远"]},
                          headers=api.headers("researcher")).status_code == 200
    first = texts_of_every_format(api, rid)
    for fmt, text in first.items():
        assert "林知远" in text, fmt
        if fmt != "json":  # json keeps the label next to the name, for round trips
            assert "SPEAKER_00" not in text, fmt
    assert json.loads(first["json"])["segments"][1]["speaker"] == "林知远"

    # Remap the same label to another person: every export follows, no text is rewritten.
    assert api.client.put(f"/api/v1/recordings/{rid}/speakers",
                          json={"SPEAKER_00": ids["周晓岚"]},
                          headers=api.headers("researcher")).status_code == 200
    second = texts_of_every_format(api, rid)
    for fmt, text in second.items():
        # 林知远 is still in the metadata (a participant) but no longer names a turn.
        assert not re.search(r"(^|\n|\*\*|: |<v )林知远(\*\*|:| `|>|\n)", text), fmt
        assert "周晓岚" in text, fmt
    assert json.loads(second["json"])["segments"][1]["speaker"] == "周晓岚"
    assert f"[{hms(segs[1][0])}] 周晓岚: " in second["txt"]

    log = api.client.get("/api/v1/audit/log", params={"action": "export"},
                         headers=api.headers("editor")).json()
    assert log["count"] == 2 * len(FORMATS)
    assert all(e["object_id"] == str(rid) and e["actor"] == "researcher"
               for e in log["data"])
    assert all(segs[1][3][:6] not in e["summary"] for e in log["data"])


def test_media_types_filenames_and_bad_format(api, tmp_path: Path) -> None:
    rid, _ = interview(api, tmp_path, limit=3)
    expected = {"txt": "text/plain", "md": "text/markdown", "srt": "application/x-subrip",
                "vtt": "text/vtt", "json": "application/json",
                "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml"
                        ".document"}
    for fmt, media in expected.items():
        r = export(api, rid, fmt, role="author")
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == media
        disposition = r.headers["content-disposition"]
        assert f'filename="recording-{rid}-v1.{fmt}"' in disposition
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"周晓岚对谈林知远-v1.{fmt}"
    r = export(api, rid, "pdf")
    assert r.status_code == 422
    assert "pdf" in r.json()["detail"] and "txt, md, srt, vtt, json, docx" in r.json()["detail"]
    assert export(api, rid, "txt", version=5).status_code == 404
    assert export(api, 999999, "txt").status_code == 404
    empty = new_recording(api, tmp_path, meta={"title": "还没有转写"}, freq=660)
    r = export(api, empty, "srt")
    assert r.status_code == 404 and "no transcript yet" in r.json()["detail"]


def test_reading_exports_merge_turns_and_use_hms(api, tmp_path: Path) -> None:
    rid, segs = interview(api, tmp_path)
    ids = people(api)
    rid2 = rid
    # 林知远 was split over SPEAKER_00 and SPEAKER_02; two consecutive segments of his.
    add_transcript(api, rid2, [
        (0.0, 4.0, "SPEAKER_01", "这么忙，有时间看论文吗？"),
        (4.5, 3600 + 62.0, "SPEAKER_00", "看论文跟看短视频一样。"),
        (3600 + 62.5, 3600 + 70.0, "SPEAKER_02", "每天花1个小时看X上大家关注的。"),
        (3600 + 71.0, 3600 + 75.0, "SPEAKER_01", "创业过程中最大的苦和乐是什么"),
    ])
    api.client.put(f"/api/v1/recordings/{rid}/speakers",
                   json={"SPEAKER_00": ids["林知远"], "SPEAKER_02": ids["林知远"],
                         "SPEAKER_01": ids["周晓岚"]}, headers=api.headers("researcher"))
    txt = export(api, rid, "txt").text
    turns = [ln for ln in txt.splitlines() if ln.startswith("[")]
    assert turns == [
        "[00:00:00] 周晓岚: 这么忙，有时间看论文吗？",
        "[00:00:04] 林知远: 看论文跟看短视频一样。每天花1个小时看X上大家关注的。",
        "[01:01:11] 周晓岚: 创业过程中最大的苦和乐是什么",
    ]
    assert "date: 2025-06-20" in txt and "place: 北京" in txt
    assert "participants: 林知远 (interviewee), 周晓岚 (host)" in txt
    md = export(api, rid, "md").text
    assert md.startswith("# 周晓岚对谈林知远\n")
    assert "**林知远** `00:00:04`" in md and md.count("**林知远**") == 1
    # Cue formats keep one cue per segment.
    assert export(api, rid, "srt").text.count(" --> ") == 4
    assert len(json.loads(export(api, rid, "json").text)["segments"]) == 4
    # The older version is still exportable.
    v1 = export(api, rid, "txt", version=1).text
    assert segs[0][3][:10] in v1 and "version: 1 of 2" in v1


def test_srt_and_vtt_parse_back(api, tmp_path: Path) -> None:
    import srt
    import webvtt

    rid, _segs = interview(api, tmp_path)
    add_transcript(api, rid, [
        (0.0, 1.25, "SPEAKER_00", "MoE 架构 --> 更省算力 <b>really</b> & more"),
        (1.25, 2.0, "SPEAKER_01", "第二行\n换行的文字"),
        (2.5, 3600 * 2 + 0.001, "SPEAKER_00", "Token消耗是个大问题"),
    ])
    ids = people(api)
    api.client.put(f"/api/v1/recordings/{rid}/speakers", json={"SPEAKER_00": ids["林知远"]},
                   headers=api.headers("researcher"))
    stored = transcript(api, rid)["segments"]
    names = [s["name"] or s["speaker"] for s in stored]

    srt_text = export(api, rid, "srt").text
    for block in srt_text.strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0].isdigit() and SRT_TIMING.match(lines[1]) and len(lines) == 3
    subs = list(srt.parse(srt_text))
    assert [s.index for s in subs] == [1, 2, 3]
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [
        (s["start"], s["end"]) for s in stored]
    assert subs[0].content.startswith("林知远: MoE 架构")
    ours = importers.parse(srt_text.encode(), "application/x-subrip").cues
    assert [(c.start, c.end, c.speaker) for c in ours] == [
        (s["start"], s["end"], n) for s, n in zip(stored, names, strict=True)]
    assert ours[1].text == "第二行 换行的文字"

    vtt_text = export(api, rid, "vtt").text
    assert vtt_text.startswith("WEBVTT\n\n")
    assert all(VTT_TIMING.match(ln) for ln in vtt_text.splitlines() if "-->" in ln and
               not ln.startswith("<"))
    captions = webvtt.from_string(vtt_text).captions
    assert [c.voice for c in captions] == names
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.000", "00:00:01.250"), ("00:00:01.250", "00:00:02.000"),
        ("00:00:02.500", "02:00:00.001")]
    ours = importers.parse(vtt_text.encode(), "text/vtt").cues
    assert [c.text for c in ours] == [
        "MoE 架构 → 更省算力 <b>really</b> & more", "第二行 换行的文字", "Token消耗是个大问题"]
    assert [c.speaker for c in ours] == names


def test_json_round_trips_through_the_import(api, tmp_path: Path) -> None:
    rid, _ = interview(api, tmp_path)
    ids = people(api)
    api.client.put(f"/api/v1/recordings/{rid}/speakers",
                   json={"SPEAKER_00": ids["林知远"], "SPEAKER_02": ids["林知远"]},
                   headers=api.headers("researcher"))
    sid = transcript(api, rid)["segments"][1]["id"]
    api.client.patch(f"/api/v1/segments/{sid}", json={"text": "先把钱给够，这是底线。"},
                     headers=api.headers("researcher"))
    first = json.loads(export(api, rid, "json").text)
    assert first["segments"][1]["words"]  # re-timed words travel too

    r = post_import(api, rid, json.dumps(first, ensure_ascii=False), "application/json")
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["backend"] == "import"
    second = json.loads(export(api, rid, "json").text)
    assert second["segments"] == first["segments"]
    assert second["metadata"]["version"].startswith("2 of 2 (import")

    # Into another recording the labels are new there; the names still come through.
    other = new_recording(api, tmp_path, meta={"title": "副本"}, freq=770)
    assert post_import(api, other, export(api, rid, "json").content, None).status_code == 201
    copy = json.loads(export(api, other, "json").text)
    assert [(s["speaker"], s["text"], s["start"], s["end"]) for s in copy["segments"]] == [
        (s["speaker"], s["text"], s["start"], s["end"]) for s in first["segments"]]


def test_docx_has_a_metadata_header(api, tmp_path: Path) -> None:
    rid, segs = interview(api, tmp_path, limit=4)
    ids = people(api)
    api.client.put(f"/api/v1/recordings/{rid}/speakers",
                   json={"SPEAKER_00": ids["林知远"], "SPEAKER_01": ids["周晓岚"]},
                   headers=api.headers("researcher"))
    r = export(api, rid, "docx", role="author")
    body, header, table = docx_text(r.content)
    assert r.content[:2] == b"PK"
    assert header.startswith("周晓岚对谈林知远") and "version: 1 of 1" in header
    assert table["date"] == "2025-06-20" and table["place"] == "北京"
    assert table["participants"] == "林知远 (interviewee), 周晓岚 (host)"
    assert table["language"] == "zh" and table["version"].startswith("1 of 1 (import, test")
    assert body.startswith("周晓岚对谈林知远")
    assert f"林知远  [{hms(segs[1][0])}]" in body and segs[1][3] in body


def test_authors_get_restricted_segments_withheld_in_every_export(api, tmp_path: Path) -> None:
    rid, segs = interview(api, tmp_path)
    secret = segs[3][3]
    restrict(api, rid, segs[3][0], segs[3][0] + 1.0, RestrictionLevel.deep_background)
    authors = texts_of_every_format(api, rid, role="author")
    editors = texts_of_every_format(api, rid, role="editor")
    for fmt in FORMATS:
        assert secret[:12] not in authors[fmt], fmt
        assert "[restricted]" in authors[fmt], fmt
        assert secret[:12] in editors[fmt], fmt
        assert segs[2][3][:12] in authors[fmt], fmt
    seg = json.loads(authors["json"])["segments"][3]
    assert seg["text"] == "[restricted]" and seg["words"] == []
    assert seg["restricted"] == "deep_background"
    assert json.loads(editors["json"])["segments"][3]["restricted"] == "deep_background"
    assert "withheld: 1 restricted segment(s)" in authors["txt"]
    summaries = [e["summary"] for e in api.client.get(
        "/api/v1/audit/log", params={"action": "export", "actor": "author"},
        headers=api.headers("editor")).json()["data"]]
    assert len(summaries) == len(FORMATS) and all("redacted" in s for s in summaries)


# ----------------------------------------------------------------------------- imports

SRT_BODY = """1
00:00:01,000 --> 00:00:04,200
周晓岚：大公司开三倍工资来挖人的时候，
你靠什么把最早那批工程师留下来？

2
00:00:04,500 --> 00:00:09,000
林知远：先把钱给够，这是底线；但对真正顶尖的人，钱往往只排第二。

3
00:00:09,000 --> 00:00:12,000
排第一的是能不能做出一件让自己多年后还愿意提起的事。
"""

VTT_BODY = """WEBVTT Kind: captions
Language: zh

NOTE 来自周晓岚对谈林知远那一期

intro
00:01.000 --> 00:04.000 align:start
<v 周晓岚>这么忙，有时间看论文吗？</v>

00:04.500 --> 00:08.000
<v.host 林知远>看论文跟看<i>短视频</i>一样 &amp; 每天花1个小时看X上的论文。

00:08.000 --> 01:00:08.000
<v SPEAKER_03>Arxiv上新的论文。
"""


def test_import_srt_maps_names_to_people(api, tmp_path: Path) -> None:
    rid, _ = interview(api, tmp_path, limit=2)
    ids = people(api)
    r = post_import(api, rid, SRT_BODY, "application/x-subrip; charset=utf-8",
                    source="podcast show notes")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == 2 and body["backend"] == "import"
    assert body["model"] == "podcast show notes" and body["language"] == "zh"
    segs = body["segments"]
    assert [(s["start"], s["end"]) for s in segs] == [(1.0, 4.2), (4.5, 9.0), (9.0, 12.0)]
    assert segs[0]["text"] == "大公司开三倍工资来挖人的时候，你靠什么把最早那批工程师留下来？"
    # Names are labels of their own, mapped to the person of exactly that name.
    assert [(s["speaker"], s["person_id"], s["name"]) for s in segs] == [
        ("周晓岚", ids["周晓岚"], "周晓岚"), ("林知远", ids["林知远"], "林知远"),
        ("林知远", ids["林知远"], "林知远")]
    assert segs[2]["text"].startswith("排第一的是")
    event = api.client.get("/api/v1/audit/log", params={"action": "import"},
                           headers=api.headers("editor")).json()["data"][0]
    assert event["summary"] == f"recording {rid}, version 2, srt, 3 segments"


def test_import_vtt_voices_tags_and_sniffing(api, tmp_path: Path) -> None:
    rid = new_recording(api, tmp_path)
    person(api, "周晓岚")
    r = post_import(api, rid, VTT_BODY, "text/plain")  # sniffed from the WEBVTT line
    assert r.status_code == 201, r.text
    segs = r.json()["segments"]
    assert [s["speaker"] for s in segs] == ["周晓岚", "林知远", "SPEAKER_03"]
    assert [s["name"] for s in segs] == ["周晓岚", None, None]
    assert segs[1]["text"] == "看论文跟看短视频一样 & 每天花1个小时看X上的论文。"
    assert segs[2]["end"] == 3608.0
    # Sourcebook JSON and SRT are sniffed too.
    assert post_import(api, rid, SRT_BODY, None).json()["version"] == 2


@pytest.mark.parametrize(
    ("body", "content_type", "line", "words"),
    [
        (b"", "text/srt", 1, "empty"),
        (b"\n  \n", "text/vtt", 1, "empty"),
        ("1\n00:00:01,000 --> 00:00:04,000\n你好\n\n2\n00:00:03,000 --> 00:00:05,000\n重叠\n",
         "text/srt", 5, "overlap"),
        ("1\n00:00:01,000 --> 00:00:04,000\n你好\n\n2\n00:00:05,000 --> 00:00:04,500\n倒退\n",
         "text/srt", 6, "before it starts"),
        ("1\n00:00:01,000 --> 00:00:04,000\n你好\n\n2\n00:00:05,000 --> 00:00:75,000\n坏\n",
         "text/srt", 6, "bad timestamp"),
        ("1\n00:00:01.000 --> 00:00:04.000\n句号不是逗号\n", "text/srt", 2, "bad timestamp"),
        ("1\n00:00:01,000 --> 00:00:02,000\n你好\n2\n00:00:03,000 --> 00:00:04,000\n少空行\n",
         "text/srt", 5, "blank line"),
        ("第一行\n00:00:01,000 --> 00:00:02,000\n你好\n", "text/srt", 1, "cue number"),
        ("1\n00:00:01,000 --> 00:00:02,000\n你好\n".encode("gbk"), "text/srt", 3, "not UTF-8"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\n好\n\n00:03.000 --> 00:04.000\n".encode()
         + "林知遠\n".encode("big5"), "text/vtt", 7, "not UTF-8"),
        ("00:01.000 --> 00:02.000\n没有头\n", "text/vtt", 1, "WEBVTT"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\n好\n\n00:01.500 --> 00:03.000\n叠\n",
         "text/vtt", 6, "overlap"),
        ("WEBVTT\n\n00:01.000 --> 00:02.00\n坏\n", "text/vtt", 3, "bad timestamp"),
        ("WEBVTT\n\n00:61.000 --> 01:02.000\n坏\n", "text/vtt", 3, "00-59"),
        ("WEBVTT\n\nNOTE only a note\n", "text/vtt", 4, "no cues"),
        ('{"format": "sourcebook-transcript", "version": 1,\n "segments": [\n'
         '  {"start": 0, "end": 2, "text": "好"},\n'
         '  {"start": 1, "end": 3, "text": "叠"}\n]}', "application/json", 4, "overlap"),
        ('{"format": "sourcebook-transcript", "version": 1,\n "segments": [\n'
         '  {"start": 0, "end": 2, "text": "好"},\n'
         '  {"start": "0:03", "end": 4, "text": "坏"}\n]}', "application/json", 4, "numbers"),
        ('{"format": "sourcebook-transcript",\n "version": 1,\n "segments": [,]}',
         "application/json", 3, "not valid JSON"),
        ('{"segments": []}', "application/json", 1, "sourcebook-transcript"),
    ],
)
def test_import_validation_names_the_line(api, tmp_path: Path, body, content_type, line,
                                          words) -> None:
    rid, _ = interview(api, tmp_path, limit=2)
    r = post_import(api, rid, body, content_type)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"line {line}: "), detail
    assert words in detail, detail
    assert transcript(api, rid)["versions"] == [1]  # nothing stored


def test_import_encodings_size_format_and_roles(api, tmp_path: Path, monkeypatch) -> None:
    rid, _ = interview(api, tmp_path, limit=2)
    for encoded in (b"\xef\xbb\xbf" + SRT_BODY.encode(), SRT_BODY.encode("utf-16"),
                    SRT_BODY.encode("utf-16-be").join([b"\xfe\xff", b""]),
                    SRT_BODY.replace("\n", "\r\n").encode()):
        r = post_import(api, rid, encoded, "text/srt")
        assert r.status_code == 201, r.text
        assert r.json()["segments"][1]["text"].startswith("先把钱给够")
    r = post_import(api, rid, "hello, this is not a transcript", "text/plain")
    assert r.status_code == 415 and "SRT" in r.json()["detail"]
    assert post_import(api, rid, SRT_BODY, "text/srt", role="author").status_code == 403
    assert post_import(api, rid, SRT_BODY, "text/srt", role="editor").status_code == 403
    assert post_import(api, 999999, SRT_BODY, "text/srt").status_code == 404

    monkeypatch.setattr(api.settings, "max_import_mb", 1)  # SOURCEBOOK_MAX_IMPORT_MB
    over = (1024 * 1024) // len(SRT_BODY.encode()) + 1
    r = post_import(api, rid, SRT_BODY * over, "text/srt")
    assert r.status_code == 413 and "MiB" in r.json()["detail"]

    def chunks():  # no Content-Length: the cap holds while streaming
        for _ in range(over):
            yield SRT_BODY.encode()

    r = api.client.post(f"/api/v1/recordings/{rid}/transcript", content=chunks(),
                        headers=api.headers("researcher") | {"Content-Type": "text/srt"})
    assert r.status_code == 413
    assert transcript(api, rid)["versions"] == [1, 2, 3, 4, 5]


# ----------------------------------------------------------------------------- CLI

def test_cli_export_matches_the_api(api, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from service.cli import app
    from service.config import get_settings

    rid, _ = interview(api, tmp_path)
    ids = people(api)
    api.client.put(f"/api/v1/recordings/{rid}/speakers", json={"SPEAKER_00": ids["林知远"]},
                   headers=api.headers("researcher"))
    settings = api.settings
    for key, value in {"DATABASE_URL": settings.database_url,
                       "DATA_DIR": str(settings.data_dir),
                       "RECORDINGS_DIR": str(settings.recordings_dir),
                       "TRANSCRIPTS_DIR": str(settings.transcripts_dir),
                       "SECRET_KEY": settings.secret_key}.items():
        monkeypatch.setenv(f"SOURCEBOOK_{key}", value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        for fmt in ("txt", "md", "srt", "vtt", "json"):
            out = tmp_path / f"cli.{fmt}"
            result = runner.invoke(app, ["export", str(rid), "--format", fmt, "--out", str(out)])
            assert result.exit_code == 0, result.output
            assert out.read_bytes() == export(api, rid, fmt).content, fmt
        result = runner.invoke(app, ["export", str(rid), "--format", "docx"])
        assert result.exit_code == 0, result.output
        written = settings.transcripts_dir / "周晓岚对谈林知远-v1.docx"
        assert docx_text(written.read_bytes())[0] == docx_text(export(api, rid, "docx").content)[0]
        result = runner.invoke(app, ["export", str(rid), "--format", "txt", "--out", "-",
                                     "--version", "1"])
        assert result.exit_code == 0 and "林知远: 先把钱给够" in result.stdout
        result = runner.invoke(app, ["export", str(rid), "--format", "pdf"])
        assert result.exit_code == 1 and "txt, md, srt, vtt, json, docx" in result.output
        result = runner.invoke(app, ["export", "999999"])
        assert result.exit_code == 1 and "no recording with id 999999" in result.output
        result = runner.invoke(app, ["export", str(rid), "--version", "4"])
        assert result.exit_code == 1 and "no transcript version 4" in result.output
    finally:
        get_settings.cache_clear()
    cli_events = [e for e in api.client.get(
        "/api/v1/audit/log", params={"action": "export"},
        headers=api.headers("editor")).json()["data"] if "(cli)" in e["summary"]]
    assert len(cli_events) == 7 and all(e["actor"] == "system" for e in cli_events)


def test_json_error_line_points_at_the_segment_even_after_nested_words() -> None:
    segments = [{"start": i * 2.0, "end": i * 2.0 + 1.5, "speaker": "林知远", "text": "好",
                 "words": [{"start": i * 2.0, "end": i * 2.0 + 1.5, "text": "好",
                            "probability": 0.9}]} for i in range(300)]
    segments[250]["end"] = segments[250]["start"] - 1  # ends before it starts
    text = json.dumps({"title": "t", "format": "sourcebook-transcript", "version": 1,
                       "metadata": {"segments": "not this one"}, "segments": segments},
                      ensure_ascii=False, indent=2)
    with pytest.raises(importers.ImportProblem) as exc:
        importers.parse(text.encode(), "application/json")
    line = exc.value.line
    assert text.splitlines()[line - 1].strip() == "{"
    assert text.splitlines()[line].strip() == f'"start": {segments[250]["start"]},'
    assert "segment 251" in str(exc.value)
