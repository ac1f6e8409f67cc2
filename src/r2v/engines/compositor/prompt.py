"""Reading a prompt as a person would: which picture each part features, and its cues.

`read_prompt` takes the prompt's sentences, clauses, mentions (`@Image1`, `@Video2`,
`@Audio1`, and the Chinese `@图片1`, `@视频1`, `@音频1`) and frame pins from `r2v.grammar`,
which every reader of a prompt shares, and groups the text into *beats*: one per stretch
of the prompt that features a picture. A clause that names no picture describes the beat
of its sentence; a sentence that names none speaks about the whole video ("Follow the
camera of @Video1.", "@Audio1 as background music."). The phrases only the compositor
understands are in `phrases`; the storyboard turns the beats into shots.

Beats, like the request's lists, number references from 0; mentions keep the prompt's
numbers, from 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from typing import Literal

from r2v.engines.compositor import phrases
from r2v.engines.compositor.grades import Grade, read_grade
from r2v.engines.compositor.phrases import MoveKind, Pace, Side, Weather
from r2v.grammar import Mention, Pin, find_mentions, read_pins, sentences

VisualKind = Literal["image", "video"]

MIN_WORDS, MAX_WORDS = 3.0, 30.0
"""A beat's weight is its word count within these bounds (times its emphasis)."""
SLOW_SPEED, FAST_SPEED, WHIP_SPEED = 0.55, 1.7, 3.0
"""The pace of a move the prompt calls slow, fast or a whip (1 is the default pace)."""
BRIEF_EMPHASIS, LINGER_EMPHASIS = 0.5, 1.6
MIN_STATED_SECONDS, MAX_STATED_SECONDS = 0.3, 15.0


@dataclass(frozen=True)
class MoveCue:
    """A camera move the prompt asks for, at a relative speed: 1 is the default pace,
    `SLOW_SPEED` "slowly", `FAST_SPEED` "quickly", `WHIP_SPEED` a whip pan or crash zoom;
    "static" holds still whatever its pace."""

    kind: MoveKind
    speed: float = 1.0


@dataclass(frozen=True)
class Beat:
    """What the prompt says about one shot: the picture it features and the cues around it."""

    kind: VisualKind
    index: int
    text: str
    words: float
    emphasis: float = 1.0
    seconds: float | None = None
    """A length the prompt states ("for 2 seconds", "0-3s")."""
    move: MoveCue | None = None
    camera_of: int | None = None
    """The video whose camera motion this shot follows."""
    pins: frozenset[Pin] = frozenset()
    audios: tuple[int, ...] = ()
    """Audio clips that start under this shot."""
    pace: Pace | None = None
    """How fast a clip is asked to play ("in slow motion", "快进")."""
    grade: Grade = Grade()
    weather: Weather | None = None
    where: frozenset[Side] = frozenset()
    """Where in the picture the camera move ends ("push in on the right")."""

    @property
    def weight(self) -> float:
        """The beat's share of the video, before stated lengths are honoured."""
        return min(max(self.words, MIN_WORDS), MAX_WORDS) * self.emphasis

    @property
    def label(self) -> str:
        """How the prompt names the picture: `@Image2`, `@Video1`."""
        return f"@{self.kind.capitalize()}{self.index + 1}"


@dataclass(frozen=True)
class Reading:
    """Everything the prompt says, grouped by beat, plus what it says about the whole video."""

    beats: tuple[Beat, ...]
    sentences: int
    move: MoveCue | None = None
    camera_of: int | None = None
    background: tuple[int, ...] = ()
    """Audio clips that span the video: "as background music", or named in a sentence that
    names no picture."""
    spoken: tuple[int, ...] = ()
    """Audio clips that are speech ("narration", "旁白"): played once, never looped."""
    audios: tuple[int, ...] = ()
    """Every audio clip mentioned, in order of first mention."""
    motion_sources: frozenset[int] = frozenset()
    """Videos named as camera references ("camera of @Video1")."""
    first_visual: tuple[VisualKind, int] | None = None
    """The first picture mentioned, if any (camera references included)."""
    timeline: float | None = None
    """The latest end of a stated time range ("3-6s"), in seconds."""
    pace: Pace | None = None
    """A pace asked of every clip ("Everything in slow motion.")."""
    grade: Grade = Grade()
    """The light and look of the whole video, said in a sentence that names no picture."""
    weather: Weather | None = None
    where: frozenset[Side] = frozenset()


@dataclass
class _Draft:
    """A beat being assembled, or the cues of a clause that names no picture."""

    visual: Mention | None
    sentence: int
    text: str = ""
    words: float = 0.0
    emphasis: float = 1.0
    seconds: float | None = None
    move: MoveCue | None = None
    camera_of: int | None = None
    pins: set[Pin] = field(default_factory=set)
    audios: list[int] = field(default_factory=list)
    pace: Pace | None = None
    grade: Grade = Grade()
    weather: Weather | None = None
    where: frozenset[Side] = frozenset()


def read_prompt(prompt: str, images: int, videos: int, audios: int) -> Reading:
    """Read `prompt` for a request with that many images, videos and audio clips."""
    mentions = find_mentions(prompt, {"image": images, "video": videos, "audio": audios})
    split = sentences(prompt, mentions)
    pinned = read_pins(split)
    pieces: list[_Draft] = []
    background: list[int] = []
    spoken: list[int] = []
    sources: set[int] = set()
    timeline: float | None = None
    for number, clauses in enumerate(split):
        for clause in clauses:
            text, start, source = clause.text, clause.start, clause.camera
            if source is not None:
                sources.add(source.index - 1)
            for stated in phrases.TIME_RANGE.finditer(text):
                timeline = max(timeline or 0.0, float(stated.group(2)))
            sounds = [m for m in clause.mentions if m.kind == "audio"]
            clips = [m.index - 1 for m in sounds]
            if phrases.VOICE.search(text):
                spoken.extend(i for i in clips if i not in spoken)
            if phrases.BACKGROUND.search(text):
                background.extend(i for i in clips if i not in background)
                sounds = []
            for visual, a, b in _segments(text, start, clause.pictures):
                draft = _cues(_Draft(visual, number), text[a:b])
                if visual is None or visual.kind == "image":
                    draft.camera_of = source.index - 1 if source is not None else None
                draft.pins = set(pinned.get(visual, ())) if visual else set()
                draft.audios = [m.index - 1 for m in sounds if a <= m.start - start < b]
                pieces.append(draft)
    beats, overall = _attach(pieces)
    for draft in overall:
        background.extend(i for i in draft.audios if i not in background)
    first: tuple[VisualKind, int] | None = None
    for mention in mentions:
        if mention.kind != "audio":
            first = (mention.kind, mention.index - 1)
            break
    return Reading(
        beats=beats,
        sentences=max(1, len(split)),
        move=next((d.move for d in overall if d.move is not None), None),
        camera_of=next((d.camera_of for d in overall if d.camera_of is not None), None),
        background=tuple(background),
        spoken=tuple(spoken),
        audios=tuple(dict.fromkeys(m.index - 1 for m in mentions if m.kind == "audio")),
        motion_sources=frozenset(sources),
        first_visual=first,
        timeline=timeline,
        pace=next((d.pace for d in overall if d.pace is not None), None),
        grade=reduce(Grade.over, (d.grade for d in overall), Grade()),
        weather=next((d.weather for d in overall if d.weather is not None), None),
        where=next((d.where for d in overall if d.where), frozenset()),
    )


def _segments(
    text: str, offset: int, visuals: list[Mention]
) -> list[tuple[Mention | None, int, int]]:
    """The clause divided between its pictures: (picture, start, end) relative to the clause.

    The division between two pictures falls on the last joining word between them ("then",
    "and", "然后"), else right after the first one; text before the first picture is its.
    """
    if not visuals:
        return [(None, 0, len(text))]
    cuts = [0]
    for a, b in zip(visuals, visuals[1:], strict=False):
        joins = list(phrases.SEGMENT_BREAK.finditer(text, a.end - offset, b.start - offset))
        cuts.append(joins[-1].start() if joins else a.end - offset)
    cuts.append(len(text))
    return [(visual, cuts[i], cuts[i + 1]) for i, visual in enumerate(visuals)]


def _cues(draft: _Draft, text: str) -> _Draft:
    """Fill in the words, camera move, pace, emphasis and stated length found in `text`."""
    draft.text = text.strip()
    words = phrases.WORD.findall(text)
    draft.words = sum(0.5 if "\u3400" <= word <= "\u9fff" else 1.0 for word in words)
    draft.move = _move(text)
    draft.pace = phrases.first_named(phrases.PACES, text)
    draft.grade = read_grade(text)
    draft.weather = phrases.first_named(phrases.WEATHER, text)
    draft.where = phrases.all_named(phrases.SIDES, text)
    if phrases.BRIEF.search(text):
        draft.emphasis = BRIEF_EMPHASIS
    elif phrases.LINGER.search(text):
        draft.emphasis = LINGER_EMPHASIS
    stated = phrases.TIME_RANGE.search(text)
    if stated is not None:
        seconds = float(stated.group(2)) - float(stated.group(1))
    else:
        alone = phrases.SECONDS.search(text)
        seconds = float(alone.group(1)) if alone is not None else 0.0
    if MIN_STATED_SECONDS <= seconds <= MAX_STATED_SECONDS:
        draft.seconds = seconds
    return draft


def _move(text: str) -> MoveCue | None:
    """The first camera move `text` asks for, with its pace."""
    found: list[tuple[int, MoveKind]] = []
    for kind, pattern, needs_camera in phrases.MOVES:
        match = pattern.search(text)
        if match and (not needs_camera or phrases.CAMERA_WORD.search(text)):
            found.append((match.start(), kind))
    if not found:
        return None
    speed = 1.0
    if phrases.WHIP.search(text):
        speed = WHIP_SPEED
    elif phrases.SLOW.search(text):
        speed = SLOW_SPEED
    elif phrases.FAST.search(text):
        speed = FAST_SPEED
    return MoveCue(min(found)[1], speed)


def _attach(pieces: list[_Draft]) -> tuple[tuple[Beat, ...], list[_Draft]]:
    """Beats with their sentences' loose clauses merged in; and the whole-video cues.

    A clause without a picture belongs to the picture before it in its sentence, else the
    one after it; in a sentence without pictures it speaks about the whole video.
    Consecutive beats of the same picture become one.
    """
    overall: list[_Draft] = []
    for position, piece in enumerate(pieces):
        if piece.visual is not None:
            continue
        same = [
            (at, p)
            for at, p in enumerate(pieces)
            if p.visual is not None and p.sentence == piece.sentence
        ]
        earlier = [p for at, p in same if at < position]
        target = earlier[-1] if earlier else (same[0][1] if same else None)
        if target is None:
            overall.append(piece)
        else:
            _merge(target, piece)
    merged: list[_Draft] = []
    for piece in (p for p in pieces if p.visual is not None):
        last = merged[-1] if merged else None
        if last is not None and last.visual is not None and _same(last.visual, piece.visual):
            _merge(last, piece)
        else:
            merged.append(piece)
    beats = tuple(
        Beat(
            kind=draft.visual.kind,  # type: ignore[arg-type, union-attr]
            index=draft.visual.index - 1,  # type: ignore[union-attr]
            text=draft.text,
            words=draft.words,
            emphasis=draft.emphasis,
            seconds=draft.seconds,
            move=draft.move,
            camera_of=draft.camera_of if draft.visual.kind == "image" else None,  # type: ignore[union-attr]
            pins=frozenset(draft.pins),
            audios=tuple(dict.fromkeys(draft.audios)),
            pace=draft.pace,
            grade=draft.grade,
            weather=draft.weather,
            where=draft.where,
        )
        for draft in merged
    )
    return beats, overall


def _same(a: Mention, b: Mention | None) -> bool:
    return b is not None and (a.kind, a.index) == (b.kind, b.index)


def _merge(target: _Draft, piece: _Draft) -> None:
    target.text = f"{target.text}, {piece.text}".strip(", ")
    target.words += piece.words
    if target.emphasis == 1.0:
        target.emphasis = piece.emphasis
    if piece.seconds is not None:
        target.seconds = (target.seconds or 0.0) + piece.seconds
    target.move = target.move or piece.move
    target.pace = target.pace or piece.pace
    target.camera_of = target.camera_of if target.camera_of is not None else piece.camera_of
    target.pins |= piece.pins
    target.audios.extend(piece.audios)
    target.grade = target.grade.over(piece.grade)
    target.weather = target.weather or piece.weather
    target.where = target.where or piece.where
