"""Per-platform content rules, checked when a post is scheduled or edited (issue 9, item 6).

`check(platform, text, media)` returns every rule the content breaks on that platform, each a
`Violation` with a stable code, the limit, the actual value and a sentence naming both, so a client
can fix its post hours before it would have failed at publish time. An empty list means the content
is publishable as far as Herald can tell without calling the platform.

Each platform's rule carries its source on the line above it. Where the sources disagree or say
nothing, the comment says so and the rule takes the stricter value: rejecting a post that would have
passed costs the client an edit; accepting one that fails costs the post. For the same reason, where
a platform says "characters" without saying which, Herald counts UTF-16 code units, which are never
fewer than code points or grapheme clusters.

Herald posts carry one text. Platforms that also want a title take the text's first line as the
title and the rest as the body (`split_title`); the adapters must map text the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

import regex


class Code(StrEnum):
    unknown_platform = "unknown_platform"
    empty_text = "empty_text"
    text_too_long = "text_too_long"
    invalid_character = "invalid_character"
    media_required = "media_required"
    too_many_media = "too_many_media"
    media_type_not_allowed = "media_type_not_allowed"
    media_kind_unknown = "media_kind_unknown"
    mixed_media = "mixed_media"
    too_many_hashtags = "too_many_hashtags"
    too_many_mentions = "too_many_mentions"
    too_many_links = "too_many_links"


class MediaKind(StrEnum):
    image = "image"
    video = "video"
    gif = "gif"
    unknown = "unknown"


_EXTENSION_KINDS = {
    **dict.fromkeys(("jpg", "jpeg", "png", "webp", "heic", "heif", "avif", "bmp", "tif", "tiff"), MediaKind.image),
    **dict.fromkeys(("mp4", "m4v", "mov", "webm", "mkv", "avi", "mpg", "mpeg", "3gp"), MediaKind.video),
    "gif": MediaKind.gif,
}


def _extension(url: str) -> str:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@dataclass(frozen=True)
class MediaRef:
    """A media URL; its kind is given, else read from the URL's extension, else unknown."""

    url: str
    kind: MediaKind | None = None

    @property
    def resolved_kind(self) -> MediaKind:
        if self.kind is not None:
            return MediaKind(self.kind)
        return _EXTENSION_KINDS.get(_extension(self.url), MediaKind.unknown)


@dataclass(frozen=True)
class Violation:
    platform: str
    code: Code
    message: str
    field: str = "text"
    limit: int | None = None
    actual: int | None = None


# ---------------------------------------------------------------------------------------------
# Counting


_CLUSTER = regex.compile(r"\X")
# A cluster is an emoji when it starts with a pictograph or a regional indicator (flags). Judged by the first
# code point only, so appending text never turns a cluster into an emoji; a keycap ("1️⃣") is thus not one
# and counts per code point, more than the 2 X gives it.
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}]")
_CONSONANT = regex.compile(r"\p{InCB=Consonant}")
# A URL with a scheme and a host whose last label is a word of two or more letters (a TLD).
# Not preceded by a letter, digit or @$#, as twitter-text requires (else "x@https://…" would count 23).
_SCHEME_URL = regex.compile(
    r"(?<![\p{L}\p{N}_@＠$＄#＃])https?://(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,}"
    r"(?::\d{1,5})?(?:[/?#][^\s<>\"]*)?",
    regex.IGNORECASE,
)
# A bare domain such as "example.com/page": twitter-text counts some of these as links, by a TLD list.
_BARE_DOMAIN = regex.compile(
    r"(?<![\p{L}\p{N}_@＠$＄#＃./:-])(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,}"
    r"(?![\p{L}\p{N}_@-])(?:/[^\s<>\"]*)?",
)
_TRAILING = ".,:;!?'\"…"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_HASHTAG = regex.compile(r"(?<![\p{L}\p{N}_&#＃])[#＃][\p{L}\p{M}\p{N}_]*[\p{L}\p{M}][\p{L}\p{M}\p{N}_]*")
_MENTION = regex.compile(r"(?<![\p{L}\p{N}_@＠.])[@＠][\p{L}\p{N}_](?:[\p{L}\p{N}_.]*[\p{L}\p{N}_])?")
# Mastodon counts "@user@example.social" as "@user".
_REMOTE_MENTION = regex.compile(
    r"(?<![=/\p{L}\p{N}_])@([\p{L}\p{N}_](?:[\p{L}\p{N}_.-]*[\p{L}\p{N}_])?)@[\p{L}\p{N}_.-]*[\p{L}\p{N}_]"
)

URL_WEIGHT = 23  # X's t.co length and Mastodon's characters_reserved_per_url


def _trim(text: str, start: int, end: int) -> int:
    """End of a link without trailing punctuation or an unbalanced closing bracket."""
    while end > start:
        last = text[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last in _CLOSERS and text.count(_CLOSERS[last], start, end) < text.count(last, start, end):
            end -= 1
        else:
            break
    return end


def _spans(pattern: regex.Pattern, text: str) -> list[tuple[int, int]]:
    spans = []
    for match in pattern.finditer(text):
        end = _trim(text, match.start(), match.end())
        if end > match.start():
            spans.append((match.start(), end))
    return spans


def _outside(text: str, spans: list[tuple[int, int]]) -> Iterable[tuple[int, int]]:
    position = 0
    for start, end in spans:
        yield position, start
        position = end
    yield position, len(text)


def links(text: str) -> list[str]:
    """URLs with a scheme, and bare domains such as www.example.com, in order of appearance."""
    scheme = _spans(_SCHEME_URL, text)
    bare = [(s + a, e + a) for a, b in _outside(text, scheme) for s, e in _spans(_BARE_DOMAIN, text[a:b])]
    return [text[s:e] for s, e in sorted(scheme + bare)]


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def code_points(text: str) -> int:
    return len(text)


def graphemes(text: str) -> int:
    """Extended grapheme clusters, counted without Unicode 15.1's Indic conjunct rule (GB9c).

    Platforms segment with libraries of different Unicode versions; before 15.1 a conjunct such as
    "क्ष" was two clusters, after it one. Counting it as two is never fewer than either.
    """
    return sum(1 + sum(1 for m in _CONSONANT.finditer(c) if m.start() > 0) for c in _CLUSTER.findall(text))


# twitter-text config v3: weight 100 (one character) in these ranges, 200 (two) elsewhere.
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


def _x_plain_weight(text: str) -> int:
    weight = 0
    for cluster in _CLUSTER.findall(text):
        if _EMOJI.match(cluster):
            weight += 2  # an emoji sequence of any length counts 2 (emojiParsingEnabled)
        else:
            weight += sum(1 if any(lo <= ord(c) <= hi for lo, hi in _X_LIGHT) else 2 for c in cluster)
    return weight


def x_weighted_length(text: str) -> int:
    """X's weighted length: NFC; URLs 23; emoji 2; Latin, punctuation and the like 1; CJK and others 2.

    A URL with a scheme counts exactly 23. A bare domain ("example.com") counts 23 on X only if its TLD
    is on twitter-text's list, which Herald does not carry, so it counts max(its own weight, 23).
    """
    text = unicodedata.normalize("NFC", text)
    scheme = _spans(_SCHEME_URL, text)
    weight = URL_WEIGHT * len(scheme)
    for a, b in _outside(text, scheme):
        part = text[a:b]
        bare = _spans(_BARE_DOMAIN, part)
        weight += sum(max(_x_plain_weight(part[s:e]), URL_WEIGHT) for s, e in bare)
        weight += sum(_x_plain_weight(part[s:e]) for s, e in _outside(part, bare))
    return weight


def mastodon_length(text: str) -> int:
    """Mastodon's StatusLengthValidator: graphemes, each http(s) URL as 23, "@user@domain" as "@user"."""
    scheme = _spans(_SCHEME_URL, text)
    count = URL_WEIGHT * len(scheme)
    for a, b in _outside(text, scheme):
        count += graphemes(_REMOTE_MENTION.sub(r"@\1", text[a:b]))
    return count


def threads_length(text: str) -> int:
    """Threads: characters (grapheme clusters), except that an emoji counts its UTF-8 bytes."""
    return sum(
        utf8_length(cluster) if _EMOJI.match(cluster) else graphemes(cluster) for cluster in _CLUSTER.findall(text)
    )


def split_title(text: str, *, title_optional: bool = False) -> tuple[str, str]:
    """(title, body): the first line and the rest, stripped. With title_optional, a single line is
    all body and no title (Pinterest, where the title is optional)."""
    head, newline, rest = text.strip().partition("\n")
    if title_optional and not newline:
        return "", head.strip()
    return head.strip(), rest.strip()


# ---------------------------------------------------------------------------------------------
# Rules as data


@dataclass(frozen=True)
class Unit:
    name: str  # how the message names what is counted
    count: Callable[[str], int]


UTF16 = Unit("characters", utf16_length)
CODE_POINTS = Unit("characters", code_points)
GRAPHEMES = Unit("characters (grapheme clusters)", graphemes)
UTF8_BYTES = Unit("bytes (UTF-8)", utf8_length)
X_WEIGHTED = Unit("weighted characters (URLs count 23; emoji, CJK and most non-Latin characters 2)", x_weighted_length)
MASTODON = Unit("characters (each URL counts 23)", mastodon_length)
THREADS = Unit("characters (an emoji counts its UTF-8 bytes)", threads_length)


class Part(StrEnum):
    text = "text"  # the whole text
    title = "title"  # its first line
    body = "body"  # the rest
    pin_title = "pin title"  # Pinterest: the first line, only when there is more than one
    pin_description = "pin description"


def _part(text: str, part: Part) -> str:
    match part:
        case Part.text:
            return text
        case Part.title | Part.body:
            title, body = split_title(text)
            return title if part is Part.title else body
        case Part.pin_title | Part.pin_description:
            title, body = split_title(text, title_optional=True)
            return title if part is Part.pin_title else body


@dataclass(frozen=True)
class TextLimit:
    part: Part
    unit: Unit
    maximum: int
    with_media: bool | None = None  # None: always; True/False: only when the post has / has no media


@dataclass(frozen=True)
class MediaOption:
    """One shape of attachments a post may have: any mix of these kinds, up to `maximum` items, and
    up to `each` items of any one kind when given."""

    kinds: frozenset[MediaKind]
    maximum: int
    label: str  # "images", "video", …
    each: int | None = None

    def excess(self, kinds: Sequence[MediaKind]) -> tuple[int, int, str] | None:
        """(limit, actual, what) of the first bound these media break, None when they fit."""
        if len(kinds) > self.maximum:
            return self.maximum, len(kinds), self.label
        if self.each is not None:
            for kind in sorted(set(kinds)):
                if kinds.count(kind) > self.each:
                    return self.each, kinds.count(kind), str(kind)
        return None


def _option(label: str, maximum: int, *kinds: MediaKind, each: int | None = None) -> MediaOption:
    return MediaOption(frozenset(kinds), maximum, label, each)


I, V, G, U = MediaKind.image, MediaKind.video, MediaKind.gif, MediaKind.unknown


class Needs(StrEnum):
    always = "always"  # text must not be empty
    without_media = "without_media"  # text or media
    title = "title"  # the first line must not be empty
    nothing = "nothing"


@dataclass(frozen=True)
class PlatformRules:
    name: str
    display: str
    limits: tuple[TextLimit, ...]
    media: tuple[MediaOption, ...]
    needs: Needs = Needs.without_media
    media_required: bool = False
    image_formats: frozenset[str] | None = None  # extensions accepted for images, when the platform is picky
    max_hashtags: int | None = None
    max_mentions: int | None = None
    max_links: int | None = None
    forbidden: str = ""  # characters the text may not hold
    forbidden_in: tuple[Part, ...] = field(default=(Part.text,))
    # A longer text goes out as a thread of replies of at most this many posts (0: no threads),
    # each within the text limit, split at whitespace (``thread_parts``).
    thread_posts: int = 0


_RULES = (
    PlatformRules(
        "x",
        "X",
        # https://docs.x.com/resources/fundamentals/counting-characters (280 weighted, config v3 of twitter-text)
        (TextLimit(Part.text, X_WEIGHTED, 280),),
        # https://docs.x.com/x-api/media/quickstart/best-practices ("up to 4 photos, 1 animated GIF or 1 video")
        (_option("images", 4, I), _option("video", 1, V), _option("GIF", 1, G)),
        # twitter/the-algorithm tweetypie/…/tweettext/TweetText.scala: at most 10 URLs, 50 hashtags, 50 mentions
        max_hashtags=50,
        max_mentions=50,
        max_links=10,
        # twitter-text hasInvalidCharacters: U+FFFE, U+FEFF, U+FFFF make a Tweet invalid
        forbidden="\ufffe\ufeff\uffff",
        thread_posts=25,  # processors/platforms/x.py posts the parts as a chain of replies
    ),
    PlatformRules(
        "bluesky",
        "Bluesky",
        # bluesky-social/atproto lexicons/app/bsky/feed/post.json: text maxGraphemes 300, maxLength 3000 (UTF-8 bytes)
        (TextLimit(Part.text, GRAPHEMES, 300), TextLimit(Part.text, UTF8_BYTES, 3000)),
        # lexicons/app/bsky/embed/images.json maxLength 4; embed/video.json one video. Herald sends a GIF as an image
        # (processors/platforms/bluesky.py: Bluesky's own app converts GIFs to video, Herald does not transcode)
        (_option("images", 4, I, G), _option("video", 1, V)),
    ),
    PlatformRules(
        "mastodon",
        "Mastodon",
        # https://docs.joinmastodon.org/entities/Instance/ (configuration.statuses: max_characters 500,
        # characters_reserved_per_url 23, max_media_attachments 4 by default; an instance may raise them,
        # Herald holds every instance to the defaults) and mastodon app/validators/status_length_validator.rb
        (TextLimit(Part.text, MASTODON, 500),),
        # PostStatusService: a video or GIFV (GIFs become GIFV) cannot share a status with other media
        (_option("images", 4, I), _option("video", 1, V, G)),
    ),
    PlatformRules(
        "threads",
        "Threads",
        # https://developers.facebook.com/documentation/threads/posts (500 characters, emoji count their UTF-8 bytes;
        # JPEG and PNG images, as quoted by https://ayrshare.com/docs/media-guidelines/threads; GIFs only through
        # GIPHY). Carousel size: the app takes 20 since 2024 and some integrators quote 20 for the API, others 10
        # (https://docs.upload-post.com/api/photo-requirements/, postfa.st): Herald takes 10.
        (TextLimit(Part.text, THREADS, 500),),
        (_option("images and videos", 10, I, V),),
        image_formats=frozenset({"jpg", "jpeg", "png"}),
        # https://developers.facebook.com/documentation/threads/create-posts/text-attachments: more than 5 links
        # fail with THREADS_API__LINK_LIMIT_EXCEEDED since 2025-12-22 (unique URLs; bare domains count)
        max_links=5,
    ),
    PlatformRules(
        "linkedin",
        "LinkedIn",
        # Posts API commentary: 3,000 characters (https://ayrshare.com/integration/linkedin, docs.postsyncer.com; the
        # unit is not stated, so UTF-16 units). 2–20 images or one video, never both:
        # https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/multiimage-post-api
        (TextLimit(Part.text, UTF16, 3000),),
        (_option("images", 20, I, G), _option("video", 1, V)),
    ),
    PlatformRules(
        "facebook",
        "Facebook",
        # No official page states a limit (the Graph API /{page-id}/feed reference is silent); every third-party
        # reference gives 63,206 characters (e.g. https://docs.upload-post.com/resources/character-limits).
        # Photos and a video cannot share a post; counts of 10 to 30 photos are quoted: Herald takes 10.
        (TextLimit(Part.text, UTF16, 63_206),),
        (_option("photos", 10, I, G), _option("video", 1, V)),
    ),
    PlatformRules(
        "instagram",
        "Instagram",
        # https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
        # (caption 2,200 characters, 30 hashtags, 20 @ tags; images JPEG only) and content-publishing
        # (carousels up to 10 items). Instagram cut hashtags to 5 per post in December 2025 (announced by
        # Adam Mosseri; the API reference still says 30): Herald takes 5.
        (TextLimit(Part.text, UTF16, 2200),),
        (_option("images and videos", 10, I, V),),
        needs=Needs.nothing,
        media_required=True,
        image_formats=frozenset({"jpg", "jpeg"}),
        max_hashtags=5,
        max_mentions=20,
    ),
    PlatformRules(
        "pinterest",
        "Pinterest",
        # Pinterest API v5 POST /pins (official page not in Herald's sources; https://ayrshare.com/integration/pinterest
        # and https://docs.upload-post.com/resources/character-limits agree): title ≤ 100, description ≤ 500, an image
        # or video is required, a carousel holds up to 5 images. Title: the first line when the text has more than
        # one, else no title and the whole text is the description.
        (TextLimit(Part.pin_title, UTF16, 100), TextLimit(Part.pin_description, UTF16, 500)),
        # A video Pin may carry a cover image (media_source video_id: cover_image_url), as the adapter sends it.
        (_option("images", 5, I, G), _option("video", 1, V), _option("video with one cover image", 2, V, I, each=1)),
        needs=Needs.nothing,
        media_required=True,
    ),
    PlatformRules(
        "reddit",
        "Reddit",
        # https://www.reddit.com/dev/api/#POST_api_submit (title up to 300 characters, required); self-text body
        # 40,000 (https://postly.ai/reddit/guides/1; upload-post quotes 5,000, its own cap); galleries ≤ 20 images.
        (TextLimit(Part.title, UTF16, 300), TextLimit(Part.body, UTF16, 40_000)),
        (_option("images", 20, I, G), _option("video", 1, V)),
        needs=Needs.title,
    ),
    PlatformRules(
        "youtube",
        "YouTube",
        # https://developers.google.com/youtube/v3/docs/videos (snippet.title ≤ 100 characters, required;
        # snippet.description ≤ 5000 bytes; neither may contain < or >); one video per upload
        (TextLimit(Part.title, UTF16, 100), TextLimit(Part.body, UTF8_BYTES, 5000)),
        (_option("video", 1, V),),
        needs=Needs.title,
        media_required=True,
        forbidden="<>",
        forbidden_in=(Part.title, Part.body),
    ),
    PlatformRules(
        "tiktok",
        "TikTok",
        # https://developers.tiktok.com/doc/content-posting-api-reference-direct-post (video caption ≤ 2,200 UTF-16
        # runes) and …-reference-photo-post (up to 35 photos, JPEG or WebP; description ≤ 4,000): Herald sends the
        # text as the caption or description and holds both to 2,200.
        (TextLimit(Part.text, UTF16, 2200),),
        (_option("photos", 35, I), _option("video", 1, V)),
        needs=Needs.nothing,
        media_required=True,
        image_formats=frozenset({"jpg", "jpeg", "webp"}),
    ),
    PlatformRules(
        "discord",
        "Discord",
        # https://discord.com/developers/docs/resources/webhook#execute-webhook (content up to 2000 characters, up to
        # 10 files of any type; official page not in Herald's sources, @sapphire/discord-utilities MessageLimits agrees)
        (TextLimit(Part.text, UTF16, 2000),),
        (_option("attachments", 10, I, V, G, U),),
    ),
    PlatformRules(
        "telegram",
        "Telegram",
        # https://core.telegram.org/bots/api#sendmessage (text 1–4096 characters), #sendphoto (caption 0–1024),
        # #sendmediagroup (2–10 photos and videos; an animation is sent alone with #sendanimation). Telegram
        # measures entities in UTF-16 code units, so Herald counts those.
        (TextLimit(Part.text, UTF16, 4096, with_media=False), TextLimit(Part.text, UTF16, 1024, with_media=True)),
        (_option("photos and videos", 10, I, V), _option("GIF", 1, G)),
    ),
    PlatformRules(
        "webhook",
        "A webhook",
        # The generic outgoing webhook (processors/platforms/webhook.py, Standard Webhooks) sends the text and the
        # media URLs as JSON to a receiver whose limits Herald cannot know: Herald's own caps, generous but bounded,
        # 100,000 characters (code points, as the adapter counts) and 20 media URLs of any kind.
        (TextLimit(Part.text, CODE_POINTS, 100_000),),
        (_option("media URLs", 20, I, V, G, U),),
    ),
    PlatformRules(
        "sandbox",
        "The sandbox",
        # processors/platforms/sandbox.py: non-empty text of at most 5000 characters (code points); media unchecked
        # there, bounded here so the sandbox cannot accept what no platform would
        (TextLimit(Part.text, CODE_POINTS, 5000),),
        (_option("attachments", 10, I, V, G, U),),
        needs=Needs.always,
    ),
)
RULES: dict[str, PlatformRules] = {rules.name: rules for rules in _RULES}
PLATFORMS = frozenset(RULES)


# ---------------------------------------------------------------------------------------------
# Checking


def thread_parts(text: str, unit: Unit, limit: int) -> list[str]:
    """The text as posts of at most ``limit`` (counted in ``unit``), split at whitespace; a word
    longer than a post is cut between grapheme clusters."""
    text = text.strip()
    if unit.count(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for space, word in regex.findall(r"(\s*)(\S+)", text):
        if current and unit.count(current + space + word) <= limit:
            current += space + word
            continue
        if current:
            parts.append(current)
        current = word
        while unit.count(current) > limit:  # one word longer than a post
            head = ""
            for cluster in regex.findall(r"\X", current):
                if head and unit.count(head + cluster) > limit:
                    break
                head += cluster
            parts.append(head)
            current = current[len(head):]
    if current:
        parts.append(current)
    return parts


def check(platform: str, text: str, media: Sequence[MediaRef | str] = ()) -> list[Violation]:
    """Every rule of `platform` that this text and media break; empty when none is."""
    rules = RULES.get(platform)
    if rules is None:
        known = ", ".join(sorted(PLATFORMS))
        return [Violation(platform, Code.unknown_platform, f"Herald has no rules for platform {platform!r} ({known})")]
    refs = [m if isinstance(m, MediaRef) else MediaRef(str(m)) for m in media]
    return _text_violations(rules, text, bool(refs)) + _media_violations(rules, refs)


def _violation(rules: PlatformRules, code: Code, message: str, part: str = "text", **values: int) -> Violation:
    return Violation(rules.name, code, message, str(part), values.get("limit"), values.get("actual"))


def _text_violations(rules: PlatformRules, text: str, has_media: bool) -> list[Violation]:
    found = []
    needs_text = rules.needs is Needs.always or (rules.needs is Needs.without_media and not has_media)
    if needs_text and not text.strip():
        what = "text" if rules.needs is Needs.always else "text or media"
        found.append(_violation(rules, Code.empty_text, f"{rules.display} needs {what}; the text is empty"))
    if rules.needs is Needs.title and not split_title(text)[0]:
        found.append(
            _violation(rules, Code.empty_text, f"{rules.display} needs a title: the text's first line", Part.title)
        )
    for limit in rules.limits:
        if limit.with_media is not None and limit.with_media != has_media:
            continue
        actual = limit.unit.count(_part(text, limit.part))
        if actual > limit.maximum and rules.thread_posts and limit.part is Part.text:
            posts = len(thread_parts(text, limit.unit, limit.maximum))
            if posts > rules.thread_posts:
                found.append(_violation(
                    rules, Code.text_too_long,
                    f"{rules.display} takes a longer text as a thread of at most {rules.thread_posts} posts of "
                    f"{limit.maximum:,} {limit.unit.name}; this text needs {posts}",
                    limit.part, limit=limit.maximum * rules.thread_posts, actual=actual))
            continue
        if actual > limit.maximum:
            context = "" if limit.with_media is None else (" with media" if has_media else " without media")
            found.append(
                _violation(
                    rules,
                    Code.text_too_long,
                    f"{rules.display} allows at most {limit.maximum:,} {limit.unit.name} in the {limit.part}"
                    f"{context}; this {limit.part} has {actual:,}",
                    limit.part,
                    limit=limit.maximum,
                    actual=actual,
                )
            )
    for part in rules.forbidden_in:
        bad = sorted({c for c in _part(text, part) if c in rules.forbidden})
        if bad:
            names = ", ".join(f"U+{ord(c):04X}" + (f" {c!r}" if c.isprintable() else "") for c in bad)
            found.append(
                _violation(rules, Code.invalid_character, f"{rules.display} does not allow {names} in the {part}", part)
            )
    for code, pattern_count, maximum, noun in (
        (Code.too_many_hashtags, lambda: len(_HASHTAG.findall(text)), rules.max_hashtags, "hashtags"),
        (Code.too_many_mentions, lambda: len(_MENTION.findall(text)), rules.max_mentions, "mentions"),
        (Code.too_many_links, lambda: len({link.lower() for link in links(text)}), rules.max_links, "links"),
    ):
        if maximum is None:
            continue
        actual = pattern_count()
        if actual > maximum:
            message = f"{rules.display} allows at most {maximum} {noun} in a post; this text has {actual}"
            found.append(_violation(rules, code, message, limit=maximum, actual=actual))
    return found


def _media_violations(rules: PlatformRules, media: list[MediaRef]) -> list[Violation]:
    if not media:
        if rules.media_required:
            shapes = " or ".join(f"{o.label} (up to {o.maximum})" if o.maximum > 1 else o.label for o in rules.media)
            return [_violation(rules, Code.media_required, f"{rules.display} needs media: {shapes}", "media")]
        return []
    allowed = frozenset().union(*(o.kinds for o in rules.media))
    kinds = [m.resolved_kind for m in media]
    found = []
    unknown = [m.url for m, kind in zip(media, kinds, strict=True) if kind is MediaKind.unknown and kind not in allowed]
    if unknown:
        found.append(
            _violation(
                rules,
                Code.media_kind_unknown,
                f"{rules.display} treats images and videos differently and Herald cannot tell which "
                f"{_urls(unknown)} {'is' if len(unknown) == 1 else 'are'}: give the media kind",
                "media",
            )
        )
    refused = sorted({k for k in kinds if k is not MediaKind.unknown and k not in allowed})
    if refused:
        accepted = ", ".join(sorted(k for k in allowed if k is not MediaKind.unknown))
        found.append(
            _violation(
                rules,
                Code.media_type_not_allowed,
                f"{rules.display} does not accept {', '.join(refused)} media (it accepts {accepted})",
                "media",
            )
        )
    if rules.image_formats is not None:
        wrong = [
            m.url
            for m, kind in zip(media, kinds, strict=True)
            if kind is MediaKind.image and _extension(m.url) and _extension(m.url) not in rules.image_formats
        ]
        if wrong:
            formats = ", ".join(sorted(rules.image_formats))
            found.append(
                _violation(
                    rules,
                    Code.media_type_not_allowed,
                    f"{rules.display} accepts images only as {formats}: {_urls(wrong)}",
                    "media",
                )
            )
    if found:
        return found
    present = set(kinds)
    fitting = [o for o in rules.media if present <= o.kinds]
    if not fitting:
        shapes = "; ".join(f"up to {o.maximum} {o.label}" for o in rules.media)
        found.append(
            _violation(
                rules,
                Code.mixed_media,
                f"{rules.display} does not mix {' and '.join(sorted(present))} in one post ({shapes})",
                "media",
            )
        )
    elif all(o.excess(kinds) for o in fitting):
        best = max(fitting, key=lambda o: o.maximum)
        limit, actual, what = best.excess(kinds)
        found.append(
            _violation(
                rules,
                Code.too_many_media,
                f"{rules.display} allows at most {limit} {what} in a post; this post has {actual}",
                "media",
                limit=limit,
                actual=actual,
            )
        )
    return found


def _urls(urls: list[str]) -> str:
    shown = ", ".join(urls[:3])
    return shown + (f" and {len(urls) - 3} more" if len(urls) > 3 else "")
