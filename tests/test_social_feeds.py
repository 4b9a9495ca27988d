"""Reading exports into `Post`s: the JSON-lines manifest and a Mastodon archive, their format told or detected, every
bad entry named by its position and field, and no media ever taken from a URL."""

import json
from pathlib import Path

import pytest

from cluster.social.feeds import FeedFormat, detect_format, read_feed
from cluster.social.post import FeedError, Post, Unit
from cluster.social.text import html_to_text
from tests.mastodon_archive import ACCOUNT, SERVER, boost, create, image, media_path, note, write_archive
from tests.paths import LFW10

BLAIR = LFW10 / "Tony_Blair" / "Tony_Blair_0001.jpg"
BUSH = LFW10 / "George_W_Bush" / "George_W_Bush_0001.jpg"


def archive_items() -> tuple[list, dict[str, Path]]:
    """Nine items: good posts (image, image and place, text only, a remote and a local image) and bad ones."""
    first = media_path("101", "a1.jpg")
    second = media_path("103", "b2.jpg")
    items = [
        create(
            note(
                "101",
                '<p>Marching to <a href="https://example.org/x"><span class="invisible">https://</span>'
                "<span>example.org/x</span></a></p><p>Line two<br>third &amp; last</p>",
                attachment=[image(first)],
                location={"type": "Place", "name": "Parliament Square"},
            )
        ),
        boost("102"),
        create(
            note(
                "103",
                "<p>two photos</p>",
                published="2025-06-14T10:00:00+01:00",
                summary="crowd photos",
                attachment=[image("https://cdn.protest.example/files/b1.jpg"), image(second)],
                location={"type": "Place", "latitude": 51.5007, "longitude": -0.1246},
            )
        ),
        create(note("104", "<p>fuck the police, absolute scum</p>")),
        create({k: v for k, v in note("105", "<p>no time</p>").items() if k != "published"}),
        create(note("106", "<p>naive time</p>", published="2025-06-14T10:00:00")),
        create(note("107", "<p>escape</p>", attachment=[image("../../outside.jpg")])),
        create(note("108", "", attachment=[image(media_path("108", "v.mp4"), "video/mp4")])),
        "not an activity",
    ]
    return items, {first: BLAIR, second: BUSH}


def test_a_mastodon_archive_becomes_posts_with_provenance_text_and_local_media(tmp_path):
    items, media = archive_items()
    folder = write_archive(tmp_path / "archive", items, media)
    feed = read_feed(folder)
    assert (feed.format, feed.unit, feed.source) == ("mastodon", Unit.ITEM, folder / "outbox.json")
    first, third, fourth, seventh = feed.posts
    assert first == Post(
        position=1,
        platform="mastodon",
        post_id=f"{ACCOUNT}/statuses/101",
        author="@marcher@protest.example",
        url=f"{SERVER}/@marcher/101",
        posted_at=1749893520,
        place="Parliament Square",
        text="Marching to https://example.org/x\n\nLine two\nthird & last",
        media=(folder.resolve() / media_path("101", "a1.jpg"),),
    )
    assert third.position == 3 and third.media == (folder.resolve() / media_path("103", "b2.jpg"),)
    assert third.place == "51.500700, -0.124600" and third.posted_at == 1749891600
    assert third.text == "crowd photos\n\ntwo photos", "the content warning is part of what the post says"
    assert (fourth.position, fourth.media, fourth.text) == (4, (), "fuck the police, absolute scum")
    assert (seventh.position, seventh.media, seventh.text) == (7, (), "escape"), "kept for its text"

    problems = {problem.position: problem.message for problem in feed.problems}
    assert sorted(problems) == [2, 3, 5, 6, 7, 8, 9]
    assert problems[2].startswith("a boost (Announce) of another post")
    assert "object.attachment.0.url is a remote URL (https://cdn.protest.example/files/b1.jpg)" in problems[3]
    assert "never fetched from the internet: download the file" in problems[3]
    assert problems[5] == "object.published: Field required"
    assert problems[6] == "object.published: Input should have timezone info"
    assert "object.attachment.0.url: ../../outside.jpg lies outside the archive folder" in problems[7]
    assert problems[8] == (
        "object.attachment.0: video/mp4 is not an image; only images are searched for faces;"
        " the post has neither text nor a local media file: nothing to ingest"
    )
    assert problems[9] == "not an activity object but str"
    assert feed.where(3) == f"{folder / 'outbox.json'} item 3"


def test_the_outbox_file_itself_reads_the_same_and_detection_follows_the_path(tmp_path):
    items, media = archive_items()
    folder = write_archive(tmp_path / "archive", items, media)
    assert read_feed(folder / "outbox.json").posts == read_feed(folder, FeedFormat.MASTODON).posts
    manifest = tmp_path / "posts.jsonl"
    manifest.write_text("")
    assert [detect_format(p) for p in (folder, folder / "outbox.json", manifest)] == [
        FeedFormat.MASTODON,
        FeedFormat.MASTODON,
        FeedFormat.JSONL,
    ]
    unnamed = tmp_path / "export.txt"
    unnamed.write_text("{}")
    with pytest.raises(FeedError, match="give --format jsonl .* or --format mastodon"):
        read_feed(unnamed)
    assert read_feed(unnamed, FeedFormat.JSONL).problems[0].message.startswith("platform: Field required")


@pytest.mark.parametrize(
    ("write", "error"),
    [
        (lambda folder: (folder / "outbox.json").write_text("{not json"), r"outbox.json: not JSON \(.* line 1"),
        (lambda folder: (folder / "outbox.json").write_text('{"type": "Person"}'), "no orderedItems list"),
        (lambda folder: (folder / "outbox.json").write_bytes(b"\xff\xfe"), "not UTF-8 text"),
        (lambda folder: None, "outbox.json: no such outbox file"),
    ],
)
def test_an_unreadable_archive_is_refused_naming_its_file(tmp_path, write, error):
    folder = tmp_path / "archive"
    folder.mkdir()
    write(folder)
    with pytest.raises(FeedError, match=error):
        read_feed(folder)


def test_a_packed_archive_is_refused_with_how_to_extract_it(tmp_path):
    packed = tmp_path / "archive-20251207-abc.tar.gz"
    packed.write_bytes(b"\x1f\x8b")
    with pytest.raises(FeedError, match=r"a packed archive; extract it first \(tar xzf archive-20251207-abc.tar.gz"):
        read_feed(packed)


def test_the_manifest_gives_posts_with_author_text_and_several_images_and_refuses_urls(tmp_path):
    base = {"platform": "x", "url": "https://x.example/1", "posted_at": "2025-06-14T10:32:00+01:00"}
    lines = [
        {**base, "post_id": "1", "image": "photos/a.jpg", "author": "@one", "text": "see you there"},
        {**base, "post_id": "2", "images": [str(BLAIR), "https://cdn.x.example/b.jpg"]},
        {**base, "post_id": "3", "text": "text only"},
        {**base, "post_id": "4", "image": "http://cdn.x.example/c.jpg"},
        {**base, "post_id": "5", "image": "a.jpg", "images": ["b.jpg"]},
        {**base, "post_id": "6"},
        {**base, "post_id": "", "image": "a.jpg"},
    ]
    manifest = tmp_path / "posts.jsonl"
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    feed = read_feed(manifest)
    assert (feed.format, feed.unit) == ("jsonl", Unit.LINE)
    one, two, three = feed.posts
    assert (one.author, one.text, one.media) == ("@one", "see you there", (tmp_path.resolve() / "photos" / "a.jpg",))
    assert (two.position, two.media, three.media, three.text) == (2, (BLAIR,), (), "text only")
    problems = [(problem.position, problem.message) for problem in feed.problems]
    assert problems[0][0] == 2 and "image 'https://cdn.x.example/b.jpg' is a remote URL" in problems[0][1]
    assert problems[1][0] == 4 and "never fetched from the internet" in problems[1][1]
    assert problems[1][1].endswith("; the post has neither text nor a local media file: nothing to ingest")
    assert problems[2] == (5, "give image or images, not both")
    assert problems[3] == (6, "the post has neither text nor a local media file: nothing to ingest")
    assert problems[4] == (7, "post_id must not be empty")


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<p>a<br>b<br/>c</p>", "a\nb\nc"),
        ("<p>&lt;3 &amp; &#x27;quoted&#x27;</p>", "<3 & 'quoted'"),
        ('<p><a href="u" class="mention">@<span>chief</span></a> look</p>', "@chief look"),
        ("<p>broken <b>markup</p>", "broken markup"),
        ("<style>p{}</style><p>shown</p><script>hidden()</script>", "shown"),
        ("plain   text\nacross lines", "plain text across lines"),
    ],
)
def test_html_content_is_reduced_to_the_text_a_reader_sees(html, text):
    assert html_to_text(html) == text
