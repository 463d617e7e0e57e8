"""Platform content rules: every length limit at n−1, n and n+1 in the platform's own unit, the counting
rules that make those units differ (X's weights, graphemes, URLs as 23, emoji as bytes), media shapes,
and properties that must hold for any text."""

from __future__ import annotations

import pytest
import regex
from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.post import platform_rules
from domain.post.platform_rules import (
    PLATFORMS,
    RULES,
    Code,
    MediaKind,
    MediaRef,
    Part,
    check,
    code_points,
    graphemes,
    links,
    mastodon_length,
    split_title,
    threads_length,
    utf8_length,
    utf16_length,
    x_weighted_length,
)

IMAGE = MediaRef("https://cdn.example/a.jpg")
VIDEO = MediaRef("https://cdn.example/a.mp4")
GIF = MediaRef("https://cdn.example/a.gif")
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 4 emoji joined by 3 ZWJ: 25 UTF-8 bytes
THUMBS = "\U0001f44d"  # 4 UTF-8 bytes
LONG_URL = "https://example.com/" + "path/" * 40  # 220 characters


def codes(platform: str, text: str, media=()) -> list[Code]:
    return [v.code for v in check(platform, text, media)]


def too_long(platform: str, text: str, media=()) -> list[str]:
    """The parts of the text that are too long on this platform."""
    return [v.field for v in check(platform, text, media) if v.code is Code.text_too_long]


def _media_for(platform: str) -> list[MediaRef]:
    """Media that the platform accepts, so text tests are not about media."""
    return {"youtube": [VIDEO], "instagram": [IMAGE], "pinterest": [IMAGE], "tiktok": [VIDEO]}.get(platform, [])


def _text_with(part: Part, length: int) -> str:
    body = "a" * length
    match part:
        case Part.text | Part.title | Part.pin_description:
            return body
        case Part.body:
            return "Title\n" + body
        case Part.pin_title:
            return body + "\nA description"


LIMIT_CASES = [
    pytest.param(name, limit, id=f"{name}-{limit.part}-{limit.maximum}")
    for name, rules in RULES.items()
    for limit in rules.limits
    if not (rules.thread_posts and limit.part is Part.text)  # a longer text is a thread: tested below
]


@pytest.mark.parametrize(("platform", "limit"), LIMIT_CASES)
def test_every_length_limit_holds_at_its_boundary(platform, limit) -> None:
    media = [IMAGE] if limit.with_media else _media_for(platform)
    for length, expect_too_long in ((limit.maximum - 1, False), (limit.maximum, False), (limit.maximum + 1, True)):
        text = _text_with(limit.part, length)
        assert limit.unit.count(_part_of(text, limit.part)) == length
        broken = [
            v for v in check(platform, text, media)
            if (v.code, v.field, v.limit) == (Code.text_too_long, limit.part, limit.maximum)
        ]
        assert bool(broken) is expect_too_long, (length, check(platform, text, media))
        assert [v.actual for v in broken] == ([length] if expect_too_long else [])


def _part_of(text: str, part: Part) -> str:
    if part in (Part.title, Part.body):
        title, body = split_title(text)
        return title if part is Part.title else body
    if part in (Part.pin_title, Part.pin_description):
        title, body = split_title(text, title_optional=True)
        return title if part is Part.pin_title else body
    return text


def test_the_violation_names_the_limit_and_the_actual_count() -> None:
    [violation] = check("mastodon", "a" * 501)
    assert (violation.platform, violation.code, violation.field) == ("mastodon", Code.text_too_long, "text")
    assert (violation.limit, violation.actual) == (500, 501)
    assert "500" in violation.message and "501" in violation.message


# X: twitter-text v3 weights -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("a" * 280, 280),
        ("中" * 140, 280),  # CJK counts 2
        ("中" * 139 + "a", 279),
        ("中" * 140 + "a", 281),
        ("한" * 140, 280),  # Hangul counts 2
        ("a" * 256 + " " + LONG_URL, 280),  # a URL counts 23 whatever its length
        ("a" * 255 + " " + LONG_URL, 279),
        ("a" * 257 + " " + LONG_URL, 281),
        ("a" * 278 + FAMILY, 280),  # a ZWJ sequence counts 2
        ("a" * 279 + FAMILY, 281),
        ("a" * 278 + "\U0001f44b\U0001f3fd", 280),  # skin tone modifier: 2
        ("a" * 278 + "\U0001f1f8\U0001f1ea", 280),  # a flag: 2
        ("e\u0301" * 280, 280),  # NFC first: e + combining acute is é, one character
        ("\u2014" * 280, 280),  # em dash is in the general punctuation range: 1
        ("\u2026" * 140, 280),  # ellipsis U+2026 is outside the light ranges: 2
        ("中 " + LONG_URL + " " + FAMILY + " x", 2 + 1 + 23 + 1 + 2 + 2),
        ("(see " + LONG_URL + ").", 5 + 23 + 2),  # trailing punctuation is not part of the URL
        ("https://en.wikipedia.org/wiki/Foo_(bar)", 23),  # balanced brackets are
        ("bob@" + LONG_URL[8:], 4 + len(LONG_URL) - 8),  # no scheme after @: counted as written
        ("see example.com", 4 + 23),  # a bare domain counts at least 23
        ("see " + "example.com/" + "a" * 30, 4 + 42),  # … or as written when longer
        ("version 3.14", 12),  # not a domain
    ],
)
def test_x_weighted_length(text: str, weight: int) -> None:
    assert x_weighted_length(text) == weight


@pytest.mark.parametrize(
    ("text", "valid"),
    [("中" * 139 + "a", True), ("中" * 140, True), ("中" * 140 + "a", False), ("a" * 257 + " " + LONG_URL, False)],
)
def test_an_x_post_is_up_to_280_weighted_characters(text: str, valid: bool) -> None:
    """One post; a longer text is a thread of several (and still valid)."""
    assert (len(platform_rules.thread_parts(text, platform_rules.X_WEIGHTED, 280)) == 1) is valid
    assert Code.text_too_long not in codes("x", text)


# Bluesky: 300 grapheme clusters and 3000 UTF-8 bytes ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "clusters"),
    [
        (FAMILY, 1),
        ("e\u0301\u0302", 1),  # combining marks join their base
        ("\U0001f1f8\U0001f1ea\U0001f1eb", 2),  # a flag and a lone regional indicator
        ("\U0001f44b\U0001f3fd", 1),
        ("क्ष", 2),  # an Indic conjunct: one cluster since Unicode 15.1, two before; counted as two
        ("\r\n", 1),
        ("", 0),
    ],
)
def test_graphemes(text: str, clusters: int) -> None:
    assert graphemes(text) == clusters


@pytest.mark.parametrize(
    ("text", "parts_too_long"),
    [
        ("a" * 299 + FAMILY, []),  # 300 clusters
        ("a" * 300 + FAMILY, ["text"]),  # 301
        ("e\u0301" * 299, []),
        ("e\u0301" * 300, []),
        ("e\u0301" * 301, ["text"]),
        (FAMILY * 119, []),  # 2,975 bytes
        (FAMILY * 120, []),  # 3,000 bytes
        (FAMILY * 121, ["text"]),  # 3,025 bytes, though only 121 clusters
        ("क्ष" * 150, []),
        ("क्ष" * 150 + "a", ["text"]),
    ],
)
def test_bluesky_counts_graphemes_and_bytes(text: str, parts_too_long: list[str]) -> None:
    assert too_long("bluesky", text) == parts_too_long


def test_bluesky_names_which_limit_is_broken() -> None:
    [violation] = check("bluesky", FAMILY * 121)
    assert (violation.limit, violation.actual) == (3000, 3025)
    assert "bytes" in violation.message


# Mastodon: graphemes, URLs as 23, remote mentions without their domain -----------------------------


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("a" * 476 + " " + LONG_URL, 500),
        ("a" * 475 + " " + LONG_URL, 499),
        ("a" * 477 + " " + LONG_URL, 501),
        ("http://x.io", 23),  # a short URL counts 23 too
        ("hi @alice@mastodon.social", 3 + 6),
        ("hi @alice", 9),
        (FAMILY * 500, 500),
        ("mail bob@example.com", 20),  # an address is no mention and no URL
    ],
)
def test_mastodon_length(text: str, length: int) -> None:
    assert mastodon_length(text) == length


def test_mastodon_limit_counts_urls_as_23() -> None:
    assert too_long("mastodon", "a" * 476 + " " + LONG_URL) == []
    assert too_long("mastodon", "a" * 477 + " " + LONG_URL) == ["text"]


# Threads: characters, emoji as UTF-8 bytes, at most 5 links ----------------------------------------


@pytest.mark.parametrize(
    ("text", "parts_too_long"),
    [
        (THUMBS * 124, []),  # 496
        (THUMBS * 125, []),  # 500
        (THUMBS * 126, ["text"]),  # 504
        ("a" * 496 + THUMBS, []),
        ("a" * 497 + THUMBS, ["text"]),
    ],
)
def test_threads_counts_emoji_as_bytes(text: str, parts_too_long: list[str]) -> None:
    assert too_long("threads", text) == parts_too_long


def test_threads_length() -> None:
    assert threads_length("ab" + FAMILY) == 2 + 25


@pytest.mark.parametrize(("count", "allowed"), [(4, True), (5, True), (6, False)])
def test_threads_allows_five_unique_links(count: int, allowed: bool) -> None:
    text = " ".join(f"https://site{i}.example.com/" for i in range(count))
    assert (Code.too_many_links not in codes("threads", text)) is allowed


def test_threads_counts_a_repeated_link_once_and_bare_domains_too() -> None:
    text = " ".join(["https://a.example.com/"] * 6 + ["www.b.com", "c.org", "d.net", "e.io"])
    assert Code.too_many_links not in codes("threads", text)
    assert Code.too_many_links in codes("threads", text + " f.dev")


def test_links_are_found_in_order_without_trailing_punctuation() -> None:
    assert links("see example.com, and https://a.b.co/x). also www.test.org/path.") == [
        "example.com",
        "https://a.b.co/x",
        "www.test.org/path",
    ]


# Hashtags and mentions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "code", "token", "maximum"),
    [
        ("instagram", Code.too_many_hashtags, "#tag{}", 5),
        ("instagram", Code.too_many_mentions, "@user{}", 20),
        ("x", Code.too_many_hashtags, "#tag{}", 50),
        ("x", Code.too_many_mentions, "@user{}", 50),
    ],
)
def test_hashtag_and_mention_caps(platform: str, code: Code, token: str, maximum: int) -> None:
    media = _media_for(platform)
    for count, allowed in ((maximum - 1, True), (maximum, True), (maximum + 1, False)):
        text = " ".join(token.format(i) for i in range(count))
        assert (code not in codes(platform, text, media)) is allowed, count


def test_hashtags_need_a_letter_and_addresses_are_not_mentions() -> None:
    text = "#1 #2 #3 #4 #5 #6 a@b.com c@d.com " + " ".join(f"#t{i}" for i in range(5))
    assert codes("instagram", text, [IMAGE]) == []


# Titles ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "optional", "expected"),
    [
        ("Title\nBody line\nmore", False, ("Title", "Body line\nmore")),
        ("  Title  \n\n  Body  ", False, ("Title", "Body")),
        ("Only a title", False, ("Only a title", "")),
        ("Only a description", True, ("", "Only a description")),
        ("Title\nDescription", True, ("Title", "Description")),
    ],
)
def test_split_title(text: str, optional: bool, expected: tuple[str, str]) -> None:
    assert split_title(text, title_optional=optional) == expected


@pytest.mark.parametrize("platform", ["reddit", "youtube"])
def test_platforms_with_a_title_need_a_first_line(platform: str) -> None:
    media = _media_for(platform)
    assert codes(platform, "\n\n", media) == [Code.empty_text]
    assert codes(platform, "A title", media) == []


def test_youtube_refuses_angle_brackets_in_title_and_description() -> None:
    violations = check("youtube", "A <b> title\nand a > description", [VIDEO])
    assert [(v.code, v.field) for v in violations] == [
        (Code.invalid_character, "title"),
        (Code.invalid_character, "body"),
    ]


def test_x_refuses_the_characters_twitter_text_calls_invalid() -> None:
    assert codes("x", "hello\ufeff") == [Code.invalid_character]


def test_youtube_description_is_counted_in_bytes() -> None:
    assert too_long("youtube", "Title\n" + "é" * 2500, [VIDEO]) == []  # 5,000 bytes
    assert too_long("youtube", "Title\n" + "é" * 2500 + "a", [VIDEO]) == ["body"]


def test_a_second_video_on_pinterest_names_the_one_video_a_pin_takes() -> None:
    [violation] = check("pinterest", "A pin", [VIDEO, VIDEO])
    assert (violation.limit, violation.actual) == (1, 2)
    assert violation.message == "Pinterest allows at most 1 video in a post; this post has 2"


def test_pinterest_title_is_only_there_when_the_text_has_two_lines() -> None:
    assert too_long("pinterest", "a" * 500, [IMAGE]) == []  # all description
    assert too_long("pinterest", "a" * 101 + "\nshort", [IMAGE]) == ["pin title"]


# Empty text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "media", "empty"),
    [
        ("x", [], True),
        ("x", [IMAGE], False),
        ("mastodon", [], True),
        ("bluesky", ["https://cdn.example/b.png"], False),
        ("sandbox", [IMAGE], True),  # the sandbox adapter refuses empty text whatever the media
        ("instagram", [IMAGE], False),  # a caption is optional
        ("telegram", [], True),
    ],
)
def test_empty_text(platform: str, media: list, empty: bool) -> None:
    assert (Code.empty_text in codes(platform, "  \n ", media)) is empty


def test_telegram_caption_with_media_is_shorter_than_a_message() -> None:
    assert too_long("telegram", "a" * 4096) == []
    assert too_long("telegram", "a" * 1025, [IMAGE]) == ["text"]
    assert check("telegram", "a" * 1025, [IMAGE])[0].message.endswith("with media; this text has 1,025")


# Media -------------------------------------------------------------------------------------------


def _n(ref: MediaRef, n: int) -> list[MediaRef]:
    return [MediaRef(ref.url.replace("/a.", f"/{i}."), ref.kind) for i in range(n)]


@pytest.mark.parametrize(
    ("platform", "media", "expected"),
    [
        ("x", _n(IMAGE, 4), []),
        ("x", _n(IMAGE, 5), [Code.too_many_media]),
        ("x", [GIF], []),
        ("x", [GIF, IMAGE], [Code.mixed_media]),
        ("x", _n(VIDEO, 2), [Code.too_many_media]),
        ("x", [IMAGE, VIDEO], [Code.mixed_media]),
        ("bluesky", _n(IMAGE, 4), []),
        ("bluesky", _n(IMAGE, 5), [Code.too_many_media]),
        ("bluesky", [GIF], []),  # sent as an image
        ("bluesky", [GIF, IMAGE, IMAGE, IMAGE], []),
        ("bluesky", [GIF, VIDEO], [Code.mixed_media]),
        ("mastodon", _n(IMAGE, 4), []),
        ("mastodon", _n(IMAGE, 5), [Code.too_many_media]),
        ("mastodon", [VIDEO, IMAGE], [Code.mixed_media]),
        ("threads", _n(IMAGE, 5) + _n(VIDEO, 5), []),
        ("threads", _n(IMAGE, 6) + _n(VIDEO, 5), [Code.too_many_media]),
        ("threads", [GIF], [Code.media_type_not_allowed]),
        ("threads", [MediaRef("https://cdn.example/a.webp")], [Code.media_type_not_allowed]),
        ("instagram", [], [Code.media_required]),
        ("instagram", _n(IMAGE, 5) + _n(VIDEO, 5), []),
        ("instagram", _n(IMAGE, 6) + _n(VIDEO, 5), [Code.too_many_media]),
        ("instagram", [MediaRef("https://cdn.example/a.png")], [Code.media_type_not_allowed]),
        ("instagram", [GIF], [Code.media_type_not_allowed]),
        ("linkedin", _n(IMAGE, 20), []),
        ("linkedin", _n(IMAGE, 21), [Code.too_many_media]),
        ("facebook", _n(IMAGE, 10), []),
        ("facebook", _n(IMAGE, 11), [Code.too_many_media]),
        ("pinterest", [], [Code.media_required]),
        ("pinterest", _n(IMAGE, 5), []),
        ("pinterest", _n(IMAGE, 6), [Code.too_many_media]),
        ("pinterest", [VIDEO], []),
        ("pinterest", [VIDEO, IMAGE], []),  # the image is the video's cover
        ("pinterest", [VIDEO, VIDEO], [Code.too_many_media]),
        ("pinterest", [VIDEO, IMAGE, IMAGE], [Code.too_many_media]),
        ("pinterest", [VIDEO, GIF], [Code.mixed_media]),
        ("reddit", _n(IMAGE, 20), []),
        ("reddit", _n(IMAGE, 21), [Code.too_many_media]),
        ("youtube", [], [Code.media_required]),
        ("youtube", [IMAGE], [Code.media_type_not_allowed]),
        ("youtube", _n(VIDEO, 2), [Code.too_many_media]),
        ("tiktok", [], [Code.media_required]),
        ("tiktok", _n(IMAGE, 35), []),
        ("tiktok", _n(IMAGE, 36), [Code.too_many_media]),
        ("tiktok", [IMAGE, VIDEO], [Code.mixed_media]),
        ("tiktok", [MediaRef("https://cdn.example/a.png")], [Code.media_type_not_allowed]),
        ("discord", _n(MediaRef("https://cdn.example/a.zip"), 10), []),
        ("discord", _n(MediaRef("https://cdn.example/a.zip"), 11), [Code.too_many_media]),
        ("telegram", _n(IMAGE, 5) + _n(VIDEO, 5), []),
        ("telegram", _n(IMAGE, 11), [Code.too_many_media]),
        ("telegram", [GIF, IMAGE], [Code.mixed_media]),
        ("webhook", _n(MediaRef("https://cdn.example/a"), 10) + _n(IMAGE, 5) + _n(VIDEO, 5), []),
        ("webhook", _n(IMAGE, 21), [Code.too_many_media]),
        ("sandbox", _n(MediaRef("https://cdn.example/a"), 10), []),
        ("sandbox", _n(MediaRef("https://cdn.example/a"), 11), [Code.too_many_media]),
    ],
)
def test_media_shapes(platform: str, media: list[MediaRef], expected: list[Code]) -> None:
    text = "Title\nbody" if platform in ("reddit", "youtube") else "hello"
    assert codes(platform, text, media) == expected


def test_a_media_kind_that_cannot_be_inferred_must_be_given() -> None:
    url = "https://cdn.example/media/123?sig=abc"
    [violation] = check("x", "hello", [url])
    assert violation.code is Code.media_kind_unknown and url in violation.message
    assert check("x", "hello", [MediaRef(url, MediaKind.video)]) == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://cdn.example/a.JPG", MediaKind.image),
        ("https://cdn.example/clip.mov?x=1.gif", MediaKind.video),  # the query is not the file
        ("https://cdn.example/anim.gif#frag", MediaKind.gif),
        ("https://cdn.example/dir.v2/file", MediaKind.unknown),
        ("https://cdn.example/", MediaKind.unknown),
    ],
)
def test_media_kind_is_read_from_the_path_extension(url: str, kind: MediaKind) -> None:
    assert MediaRef(url).resolved_kind is kind


def test_an_unknown_platform_is_a_violation() -> None:
    [violation] = check("myspace", "hello")
    assert violation.code is Code.unknown_platform and "myspace" in violation.message


def test_valid_content_has_no_violation_on_any_platform() -> None:
    for platform in PLATFORMS:
        media = _media_for(platform) or [IMAGE]
        assert check(platform, "Hello there\nfrom Herald", media) == [], platform


# Properties --------------------------------------------------------------------------------------

COUNTERS = [utf16_length, code_points, graphemes, utf8_length, x_weighted_length, mastodon_length, threads_length]
# Text drawn mostly from characters that exercise the counting: Latin, CJK, marks, emoji parts, URLs.
pieces = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        ["中", "é", "e\u0301", FAMILY, THUMBS, "\u200d", "\U0001f3fd", "\U0001f1f8", "क्ष", "#tag", "@bob",
         "@bob@x.social", " https://example.com/a ", "example.org", "\n", " ", ".", ")", "©", "1\ufe0f\u20e3"]
    ),
)
texts = st.lists(pieces, max_size=40).map("".join)
# Repeated, so that texts often cross the shorter limits (280 to 5,000) the properties are about.
long_texts = st.tuples(texts, st.integers(1, 120)).map(lambda pair: pair[0] * pair[1])
media_lists = st.lists(
    st.builds(MediaRef, st.sampled_from(["https://c.example/a.jpg", "https://c.example/a.mp4",
                                         "https://c.example/a.gif", "https://c.example/a.png", "https://c.example/a"])),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_counts_are_never_negative_and_zero_only_for_empty_text(text: str) -> None:
    for count in COUNTERS:
        assert count(text) >= 0
        assert (count(text) == 0) == (text == ""), count.__name__


@settings(max_examples=300, deadline=None)
@given(texts)
def test_graphemes_never_exceed_code_points_nor_code_points_utf16_units(text: str) -> None:
    assert graphemes(text) <= code_points(text) <= utf16_length(text)


@settings(max_examples=300, deadline=None)
@given(long_texts, texts)
def test_appending_words_never_shortens_a_text(text: str, more: str) -> None:
    for count in COUNTERS:
        assert count(text + " " + more) >= count(text), count.__name__


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PLATFORMS)), long_texts, texts, media_lists)
def test_appending_words_never_makes_a_too_long_text_valid(platform: str, text: str, more: str, media) -> None:
    if Code.text_too_long in codes(platform, text, media):
        event("too long")
        assert Code.text_too_long in codes(platform, text + " " + more, media)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["x", "mastodon"]),
    long_texts,
    texts,
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/_-", max_size=30),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/_-", min_size=1, max_size=200),
)
def test_a_longer_url_counts_the_same_on_x_and_mastodon(platform, before, after, path, more_path) -> None:
    short = f"{before} https://example.com/{path} {after}"
    longer = f"{before} https://example.com/{path}{more_path} {after}"
    count = x_weighted_length if platform == "x" else mastodon_length
    assert count(longer) == count(short)
    if Code.text_too_long not in codes(platform, short):
        event("valid")
        assert Code.text_too_long not in codes(platform, longer)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), texts, media_lists)
def test_check_answers_every_input_with_well_formed_violations(platform: str, text: str, media) -> None:
    for name in (platform, *sorted(PLATFORMS)):
        for violation in check(name, text, media):
            assert violation.platform == name and violation.message
            assert violation.code in Code
            if violation.limit is not None:
                assert violation.actual is not None and violation.actual > violation.limit


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PLATFORMS)), texts, media_lists)
def test_media_order_does_not_matter(platform: str, text: str, media) -> None:
    assert sorted(codes(platform, text, media)) == sorted(codes(platform, text, list(reversed(media))))


def test_a_longer_x_text_is_a_thread_of_at_most_25_posts() -> None:
    words = ["word"] * 200  # 999 weighted characters: 4 posts of at most 280
    assert not platform_rules.check("x", " ".join(words))
    parts = platform_rules.thread_parts(" ".join(words), platform_rules.X_WEIGHTED, 280)
    assert len(parts) == 4 and all(platform_rules.x_weighted_length(p) <= 280 for p in parts)
    assert " ".join(parts) == " ".join(words), "nothing lost or reordered at the cuts"
    too_long = " ".join(["word"] * 1500)  # 26 posts
    (violation,) = platform_rules.check("x", too_long)
    assert violation.code == platform_rules.Code.text_too_long and "at most 25 posts" in violation.message
    # Platforms without threads keep their limit.
    assert platform_rules.check("mastodon", "a" * 501)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000))
def test_thread_parts_keep_every_word_and_fit_the_limit(text: str) -> None:
    parts = platform_rules.thread_parts(text, platform_rules.X_WEIGHTED, 280)
    assert all(platform_rules.x_weighted_length(p) <= 280 for p in parts if len(regex.findall(r"\X", p)) > 1)
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())
