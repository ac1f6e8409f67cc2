"""The prompt's grammar: how a prompt names its references and pins its first and last frames.

Everything that reads a prompt reads it here, so that they cannot disagree: validation (a
mention of a reference that does not exist is refused), the engines (which pictures the
prompt features, which image opens or closes the video, which picture `adaptive` follows)
and the upstream gateway (mentions rewritten as words). A prompt the server accepts is read
the same way by every engine.

Mentions keep the number the prompt writes: `@Image2` is image 2, the second of
`image_urls`. Code that indexes lists from 0 subtracts one where it looks a reference up.
English patterns match on word boundaries and ignore case; Chinese ones match anywhere,
since Chinese text has no spaces between words.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

MentionKind = Literal["image", "video", "audio"]
Pin = Literal["first", "last"]

_I = re.IGNORECASE

# --- mentions ----------------------------------------------------------------------------
MENTION: Final = re.compile(r"@\s?(image|video|audio|图片|图像|照片|视频|音频)\s?(\d{1,3})", _I)
"""`@Image1`, `@image 1`, `@ Image1`, and the Chinese `@图片1` (`@图像1`, `@照片1`), `@视频1`,
`@音频1`. The playground's editor carries a copy of this pattern (a test holds them equal)."""
KINDS: Final[Mapping[str, MentionKind]] = {
    "image": "image", "图片": "image", "图像": "image", "照片": "image",
    "video": "video", "视频": "video", "audio": "audio", "音频": "audio",
}  # fmt: skip


@dataclass(frozen=True)
class Mention:
    """One mention of a reference: its kind, its number as written (1-based), where it is."""

    kind: MentionKind
    index: int
    start: int
    end: int

    @property
    def text(self) -> str:
        """The canonical spelling, however the prompt wrote it: `@Image2` for `@ 照片2`."""
        return f"@{self.kind.capitalize()}{self.index}"


def find_mentions(prompt: str, counts: Mapping[MentionKind, int] | None = None) -> list[Mention]:
    """Every mention in the prompt, in the order written.

    With `counts` (how many references of each kind the request has), only the mentions of
    references that exist: an engine skips what validation would have refused.
    """
    found = [
        Mention(KINDS[match.group(1).lower()], int(match.group(2)), match.start(), match.end())
        for match in MENTION.finditer(prompt)
    ]
    if counts is None:
        return found
    return [m for m in found if 1 <= m.index <= counts.get(m.kind, 0)]


# --- sentences and clauses ---------------------------------------------------------------
# A period ends a sentence unless it sits between two digits ("3.5 s").
SENTENCE_BREAK: Final = re.compile(r"[。！？!?；;\n]+|\.(?!\d)|(?<!\d)\.")
CLAUSE_BREAK: Final = re.compile(r"[,，、]+")

# "camera of @Video1", "参考@Video1的运镜": a video named for its camera motion.
_MOTION_WORD = (
    r"(?:camera\s*work|camera\s+(?:motion|movement|move)s?|camera|motion|movements?|moves|"
    r"运镜|镜头运动|镜头移动|镜头语言|运动方式|运动轨迹|摄像机运动|镜头)"
)
CAMERA_BEFORE: Final = re.compile(
    rf"{_MOTION_WORD}\s*(?:[a-z]+\s+){{0,2}}?(?:of|from|in|like|as\s+in|as|following|"
    r"matching|参考|参照|跟随|模仿|仿照|同|像|按照|与|和|复刻|沿用|来自|取自)\s*"
    r"(?:the\s+)?(?:reference\s+)?(?:clip\s+|video\s+)?$",
    _I,
)
CAMERA_AFTER: Final = re.compile(
    rf"^(?:'s|’s|的)?\s*{_MOTION_WORD}"
    rf"|^\s*(?:as|for)\s+(?:the\s+|a\s+|its\s+)?{_MOTION_WORD}"
    rf"|^\s*(?:作为|为|当作)\s*{_MOTION_WORD}",
    _I,
)
CAMERA_NEAR: Final = 48
"""Characters either side of a video mention searched for a camera phrase."""


@dataclass(frozen=True)
class Clause:
    """A clause of the prompt: where it is, its mentions, and its camera reference."""

    start: int
    end: int
    text: str
    mentions: tuple[Mention, ...]
    camera: Mention | None
    """The video the clause names for its camera motion ("camera of @Video1"), if any."""

    @property
    def pictures(self) -> list[Mention]:
        """The pictures the clause features: its images and videos, less its camera
        reference (a video followed for its motion is not a picture of the clause)."""
        return [m for m in self.mentions if m.kind != "audio" and m != self.camera]


def sentences(prompt: str, mentions: Sequence[Mention]) -> list[list[Clause]]:
    """The prompt's sentences, each a list of its clauses (a blank one has none)."""
    split: list[list[Clause]] = []
    for s_start, s_end in _spans(prompt, SENTENCE_BREAK, 0, len(prompt)):
        clauses: list[Clause] = []
        for start, end in _spans(prompt, CLAUSE_BREAK, s_start, s_end):
            inside = tuple(m for m in mentions if start <= m.start < end)
            text = prompt[start:end]
            clauses.append(Clause(start, end, text, inside, _camera(text, start, inside)))
        split.append(clauses)
    return split


def sentence_texts(prompt: str) -> list[str]:
    """The prompt's sentences as text, trimmed, blank ones dropped (as `sentences` splits)."""
    return [
        prompt[start:end].strip() for start, end in _spans(prompt, SENTENCE_BREAK, 0, len(prompt))
    ]


def _spans(text: str, breaks: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """The pieces of text[start:end] between matches of `breaks`, blank ones dropped."""
    spans: list[tuple[int, int]] = []
    position = start
    for match in breaks.finditer(text, start, end):
        if text[position : match.start()].strip():
            spans.append((position, match.start()))
        position = match.end()
    if text[position:end].strip():
        spans.append((position, end))
    return spans


def _camera(text: str, offset: int, inside: Sequence[Mention]) -> Mention | None:
    """The video mention a clause names as its camera reference, if any."""
    for mention in inside:
        if mention.kind != "video":
            continue
        start, end = mention.start - offset, mention.end - offset
        before = text[max(0, start - CAMERA_NEAR) : start]
        if CAMERA_BEFORE.search(before) or CAMERA_AFTER.search(text[end : end + CAMERA_NEAR]):
            return mention
    return None


# --- first and last frames ---------------------------------------------------------------
FIRST_FRAME: Final = re.compile(
    r"\b(?:first|opening|start(?:ing)?|initial|beginning|1st)[\s-]+(?:frame|image|picture|still)s?"
    r"\b|首帧|第一帧|起始帧|开始帧|开头帧|起幅",
    _I,
)
LAST_FRAME: Final = re.compile(
    r"\b(?:last|final|ending|end|closing|concluding)[\s-]+(?:frame|image|picture|still)s?\b"
    r"|尾帧|末帧|最后一帧|结束帧|结尾帧|落幅",
    _I,
)
BOTH_FRAMES: Final = re.compile(
    r"\b(?:first|opening|start(?:ing)?)\s+(?:and|&)\s+(?:last|final|ending|end|closing)"
    r"[\s-]+frames?\b|首尾帧|首帧和尾帧|首帧与尾帧|首帧及尾帧",
    _I,
)
_PICTURE = r"@\s?(?:image|video|图片|图像|照片|视频)\s?\d{1,3}"
# "starts with @Image1", "开头是@Image1", "以@Image1开头": the picture right after (or inside).
OPENS_WITH: Final = re.compile(
    r"\b(?:start|begin|open)(?:s|ing)?\s+(?:with|on|from)\s+(?:the\s+)?(?=@)"
    r"|(?:开头|开场|开篇)\s*(?:是|为|用)?\s*(?=@)"
    rf"|以\s*(?={_PICTURE}\s*(?:作为|为)?\s*(?:开头|开场|开篇|开始))",
    _I,
)
ENDS_WITH: Final = re.compile(
    r"\b(?:end|finish|close|conclude)(?:s|es|ing)?\s+(?:with|on)\s+(?:the\s+)?(?=@)"
    r"|(?:结尾|收尾|结束)\s*(?:是|为|用)?\s*(?=@)"
    rf"|以\s*(?={_PICTURE}\s*(?:作为|为)?\s*(?:结尾|结束|收尾|收束))",
    _I,
)
# The words that tie a frame phrase to the picture before it ("@Image1 as the first frame",
# "@Image1作为首帧") or after it ("the first frame is @Image1", "首帧为@Image1").
TIES_BACK: Final = re.compile(
    r"^[\s:：=\-—]*(?:is|as|becomes|serves\s+as|used\s+as|for|will\s+be|should\s+be|"
    r"作为|为|是|当作|当成|用作|设为|设置为|作|做|充当|当)\s*(?:the|a|an|its)?\s*$",
    _I,
)
TIES_FORWARD: Final = re.compile(
    r"^[\s:：=\-—]*(?:is|=|uses?|using|shows?|from|of|with|will\s+be|should\s+be|be|"
    r"为|是|用|使用|采用|选用|来自|取自|取)\s*(?:the|a|an)?\s*$",
    _I,
)
GAP_ONLY: Final = re.compile(r"^[\s:：=\-—]*$")


@dataclass(frozen=True)
class FramePins:
    """The pictures a prompt pins as the video's first and last frame, if any."""

    first: Mention | None = None
    last: Mention | None = None


def read_pins(split: Sequence[Sequence[Clause]]) -> dict[Mention, frozenset[Pin]]:
    """The pins of each picture mentioned in the prompt (`split` is `sentences`' answer).

    A frame phrase belongs to a picture of its clause, judged by the words between them.
    One in a clause without a picture ("…, it becomes the first frame") belongs to the
    picture before it in its sentence, else the first one after it.
    """
    pinned: dict[Mention, set[Pin]] = {}
    for clauses in split:
        pictures = [m for clause in clauses for m in clause.pictures]
        for clause in clauses:
            if clause.pictures:
                for mention, pins in _clause_pins(clause).items():
                    pinned.setdefault(mention, set()).update(pins)
                continue
            loose = _loose_pins(clause.text)
            earlier = [m for m in pictures if m.start < clause.start]
            owner = earlier[-1] if earlier else (pictures[0] if pictures else None)
            if loose and owner is not None:
                pinned.setdefault(owner, set()).update(loose)
    return {mention: frozenset(pins) for mention, pins in pinned.items()}


def pinned_ends(pins: Sequence[Collection[Pin]]) -> tuple[int | None, int | None]:
    """Of a row of shots, given each shot's pins: the one that opens the video and the one
    that closes it (the same one when a shot pinned both ways is the only closer).

    The first shot pinned first opens; the first other shot pinned last closes.
    """
    opener = next((n for n, p in enumerate(pins) if "first" in p), None)
    closer = next((n for n, p in enumerate(pins) if "last" in p and n != opener), None)
    if closer is None and opener is not None and "last" in pins[opener]:
        closer = opener
    return opener, closer


def frame_pins(prompt: str, counts: Mapping[MentionKind, int]) -> FramePins:
    """The pictures `prompt` pins as the first and the last frame, for a request with
    `counts` references of each kind.

    Pictures are taken in the order written, a picture named twice in a row counting once
    (as the compositor shows it once), and `pinned_ends` picks the two ends.
    """
    mentions = find_mentions(prompt, counts)
    split = sentences(prompt, mentions)
    pinned = read_pins(split)
    shown: list[tuple[Mention, set[Pin]]] = []
    for picture in (m for clauses in split for clause in clauses for m in clause.pictures):
        pins = set(pinned.get(picture, ()))
        if shown and (shown[-1][0].kind, shown[-1][0].index) == (picture.kind, picture.index):
            shown[-1][1].update(pins)
        else:
            shown.append((picture, pins))
    opener, closer = pinned_ends([pins for _, pins in shown])
    return FramePins(
        shown[opener][0] if opener is not None else None,
        shown[closer][0] if closer is not None else None,
    )


def _clause_pins(clause: Clause) -> dict[Mention, set[Pin]]:
    """Which pictures of a clause the clause pins to the first or last frame."""
    text, offset, pictures = clause.text, clause.start, clause.pictures
    pinned: dict[Mention, set[Pin]] = {}
    taken: list[tuple[int, int]] = []
    both: tuple[Pin, ...] = ("first", "last")
    for pattern, pins in ((BOTH_FRAMES, both), (FIRST_FRAME, both[:1]), (LAST_FRAME, both[1:])):
        for match in pattern.finditer(text):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue  # "last frame" inside "first and last frame"
            taken.append(match.span())
            owner = _owner(text, offset, match, pictures)
            if owner is not None:
                pinned.setdefault(owner, set()).update(pins)
    ends: tuple[tuple[re.Pattern[str], Pin], ...] = ((OPENS_WITH, "first"), (ENDS_WITH, "last"))
    for pattern, pin in ends:
        for match in pattern.finditer(text):
            follows = [m for m in pictures if m.start - offset >= match.end()]
            if follows and follows[0].start - offset - match.end() <= 1:
                pinned.setdefault(follows[0], set()).add(pin)
    return pinned


def _loose_pins(text: str) -> set[Pin]:
    """The frames a clause names without naming a picture."""
    if BOTH_FRAMES.search(text):
        return {"first", "last"}
    pins: set[Pin] = set()
    if FIRST_FRAME.search(text):
        pins.add("first")
    if LAST_FRAME.search(text):
        pins.add("last")
    return pins


def _owner(
    text: str, offset: int, phrase: re.Match[str], pictures: Sequence[Mention]
) -> Mention | None:
    """The picture a frame phrase belongs to, judged by the words between them.

    "@Image1 as the first frame" ties back, "the first frame is @Image1" ties forward; a
    bare neighbour ("first frame: @Image1") counts less than a tying word; failing both,
    the nearest picture of the clause.
    """
    before = [m for m in pictures if m.end - offset <= phrase.start()]
    after = [m for m in pictures if m.start - offset >= phrase.end()]
    options: list[tuple[int, int, Mention]] = []
    if before:
        gap = text[before[-1].end - offset : phrase.start()]
        options.append((_tie(gap, TIES_BACK), 1, before[-1]))
    if after:
        gap = text[phrase.end() : after[0].start - offset]
        options.append((_tie(gap, TIES_FORWARD), 0, after[0]))
    if not options:
        return None
    strength, _, chosen = max(options, key=lambda option: option[:2])
    if strength:
        return chosen

    def distance(m: Mention) -> int:
        return min(abs(m.end - offset - phrase.start()), abs(m.start - offset - phrase.end()))

    return min(pictures, key=distance)


def _tie(gap: str, ties: re.Pattern[str]) -> int:
    if ties.match(gap):
        return 2
    return 1 if GAP_ONLY.match(gap) else 0


# --- the picture `adaptive` follows ------------------------------------------------------
class Shaped(Protocol):
    """A picture with a size: an image or video reference."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


def adaptive_picture(
    prompt: str, images: Sequence[Shaped], videos: Sequence[Shaped]
) -> Shaped | None:
    """The picture whose shape `aspect_ratio: adaptive` takes, as API.md says: the first
    picture the prompt mentions that exists, else the first image, else the first video;
    None when there is no picture at all (the video is then 16:9)."""
    for mention in find_mentions(prompt, {"image": len(images), "video": len(videos)}):
        return (images if mention.kind == "image" else videos)[mention.index - 1]
    for pool in (images, videos):
        if pool:
            return pool[0]
    return None
