"""The phrases only the compositor understands, English and Chinese, as compiled patterns.

Kept apart from the reading logic (`prompt`) so the vocabulary can grow without touching
how clauses are grouped into shots. What every reader of a prompt shares (mentions, the
sentences and clauses, camera references, first and last frames) is `r2v.grammar`.
English patterns match on word boundaries and ignore case; Chinese ones match anywhere,
since Chinese text has no spaces between words.
"""

from __future__ import annotations

import re
from typing import Final, Literal, TypeVar

MoveKind = Literal[
    "push_in", "pull_out", "pan_left", "pan_right", "pan_up", "pan_down", "drift", "static"
]  # fmt: skip

_I = re.IGNORECASE

# Where a clause that features two pictures is divided between them: at the last of these
# words between the two mentions, else right after the first mention.
SEGMENT_BREAK: Final = re.compile(
    r"\b(?:and\s+then|then|after\s+that|afterwards|next|followed\s+by|before|while|"
    r"cut(?:s|ting)?\s+to|and|to)\b|然后|接着|随后|之后|再|和|与|跟|以及|到",
    _I,
)

# --- camera moves ------------------------------------------------------------------------
_CAMERA_WORD = re.compile(r"\b(?:camera|shot|lens|view|frame)\b|镜头|画面|视角|机位", _I)
_MOVES: Final[tuple[tuple[MoveKind, str, bool], ...]] = (
    # (kind, pattern, needs a camera word in the same text)
    ("static", r"\b(?:static|locked[\s-]off|fixed\s+(?:camera|shot)|tripod|still\s+camera|"
     r"no\s+camera\s+(?:movement|motion))\b"
     r"|固定镜头|镜头固定|静止镜头|镜头静止|镜头不动|定镜", False),
    ("push_in", r"\b(?:push(?:es|ing)?|zoom(?:s|ing)?|dolly(?:ing)?|dollies|track(?:s|ing)?|"
     r"creep(?:s|ing)?)[\s-]+in\b|\bclos(?:e|es|ing)\s+in\b|推近|推进|推镜|拉近|放大|逼近", False),
    ("push_in", r"\bmov(?:e|es|ing)\s+(?:closer|in)\b|靠近", True),
    ("pull_out", r"\b(?:pull(?:s|ing)?|zoom(?:s|ing)?|dolly(?:ing)?|dollies|track(?:s|ing)?)"
     r"[\s-]+(?:out|back|away)\b|\bwiden(?:s|ing)?\b|拉远|拉出|后拉|拉开|缩小", False),
    ("pull_out", r"\bmov(?:e|es|ing)\s+(?:back|away)\b|远离", True),
    ("pan_left", r"\b(?:pan(?:s|ning|ned)?|truck(?:s|ing)?)\s+(?:to\s+(?:the\s+)?)?left"
     r"(?:ward)?s?\b|左摇|向左摇|左移|向左(?:平)?移|向左(?:滑|转)|往左", False),
    ("pan_left", r"\b(?:mov(?:e|es|ing)|slid(?:e|es|ing)|glid(?:e|es|ing)|drift(?:s|ing)?)\s+"
     r"(?:to\s+(?:the\s+)?)?left(?:ward)?s?\b|向左", True),
    ("pan_right", r"\b(?:pan(?:s|ning|ned)?|truck(?:s|ing)?)\s+(?:to\s+(?:the\s+)?)?right"
     r"(?:ward)?s?\b|右摇|向右摇|右移|向右(?:平)?移|向右(?:滑|转)|往右", False),
    ("pan_right", r"\b(?:mov(?:e|es|ing)|slid(?:e|es|ing)|glid(?:e|es|ing)|drift(?:s|ing)?)\s+"
     r"(?:to\s+(?:the\s+)?)?right(?:ward)?s?\b|向右", True),
    ("pan_up", r"\b(?:tilt(?:s|ing)?|pan(?:s|ning)?|crane(?:s|ing)?|pedestal(?:s|ing)?|"
     r"boom(?:s|ing)?)\s+up(?:ward)?s?\b|上摇|向上摇|上移|升镜|镜头上升|往上", False),
    ("pan_up", r"\b(?:mov(?:e|es|ing)|rise[sn]?|rising)\s+up(?:ward)?s?\b|向上", True),
    ("pan_down", r"\b(?:tilt(?:s|ing)?|pan(?:s|ning)?|crane(?:s|ing)?|pedestal(?:s|ing)?|"
     r"boom(?:s|ing)?)\s+down(?:ward)?s?\b|下摇|向下摇|下移|降镜|镜头下降|往下", False),
    ("pan_down", r"\b(?:mov(?:e|es|ing)|sink(?:s|ing)?|descend(?:s|ing)?)\s+down(?:ward)?s?"
     r"\b|向下", True),
    ("drift", r"\b(?:drift(?:s|ing)?|float(?:s|ing)?|hand[\s-]?held|orbit(?:s|ing)?|"
     r"arc(?:s|ing)?|sway(?:s|ing)?)\b|漂移|漂浮|手持|环绕|晃动|摇晃|飘移|飘动", False),
    # A whip pan or crash zoom that names no direction: across to the right, or in.
    ("pan_right", r"\b(?:whip|swish|snap)[\s-]?pan(?:s|ning|ned)?\b"
     r"(?!\s+(?:to\s+(?:the\s+)?)?(?:left|right|up|down))|甩镜|甩摇|快甩|急甩", False),
    ("push_in", r"\b(?:crash|snap)[\s-]?zoom(?:s|ing)?\b(?!\s+(?:out|back|away))|急推|猛推", False),
)  # fmt: skip
MOVES: Final = tuple((kind, re.compile(source, _I), camera) for kind, source, camera in _MOVES)
CAMERA_WORD: Final = _CAMERA_WORD

SLOW: Final = re.compile(
    r"\b(?:slow(?:ly)?|gentl[ey]|subtle|gradual(?:ly)?|lazy|lazily|leisurely|soft(?:ly)?)\b"
    r"|缓缓|缓慢|慢慢|轻轻|轻微|徐徐|缓",
    _I,
)
FAST: Final = re.compile(
    r"\b(?:fast|quick(?:ly)?|rapid(?:ly)?|swift(?:ly)?|sudden(?:ly)?|"
    r"dramatic(?:ally)?|aggressive(?:ly)?|energetic(?:ally)?)\b|快速|迅速|急速|猛然|猛地|飞速|飞快",
    _I,
)
WHIP: Final = re.compile(
    r"\b(?:whip(?:s|ping)?|swish|snap|crash)(?:[\s-]?(?:pan|zoom|tilt)(?:s|ning|ned|ing)?)?\b"
    r"|甩镜|甩摇|快甩|急甩|急推|猛推",
    _I,
)
"""A move made in a burst, blurred: whip pans, swish pans, crash zooms."""

# --- timing and emphasis -----------------------------------------------------------------
TIME_RANGE: Final = re.compile(
    r"(?<![\d.])(\d{1,2}(?:\.\d+)?)\s*(?:s|秒)?\s*(?:-|–|—|~|～|to|到|至)\s*"
    r"(\d{1,2}(?:\.\d+)?)\s*(?:s|secs?|seconds?|秒)(?![a-z])",
    _I,
)
SECONDS: Final = re.compile(r"(?<![\d.])(\d{1,2}(?:\.\d+)?)\s*(?:s|secs?|seconds?|秒)(?![a-z])", _I)
BRIEF: Final = re.compile(
    r"\b(?:brief(?:ly)?|glimpse|flash(?:es)?|moment(?:ary|arily)?|split[\s-]second|"
    r"quick\s+(?:cut|shot|look))\b|短暂|一闪|闪过|片刻|瞬间",
    _I,
)
LINGER: Final = re.compile(
    r"\b(?:linger(?:s|ing)?|long|hold(?:s|ing)?\s+on|dwell(?:s|ing)?|extended|lengthy)\b"
    r"|长时间|久久|停留|长镜头",
    _I,
)

# --- a clip's pace: slowed or sped up as asked ---------------------------------------------
Pace = Literal["slow_motion", "speed_up", "time_lapse"]
_PACES: Final[tuple[tuple[Pace, str], ...]] = (
    ("slow_motion", r"\bslow[\s-]?mo(?:tion)?\b|慢动作|慢镜头|慢放"),
    ("speed_up", r"\b(?:speed(?:s|ed|ing)?[\s-]up|sped[\s-]up|fast[\s-]?forward(?:s|ed|ing)?)\b"
     r"|快进|快放"),
    ("time_lapse", r"\btime[\s-]?lapse[sd]?\b|延时"),
)  # fmt: skip
PACES: Final = tuple((kind, re.compile(source, _I)) for kind, source in _PACES)
"""How fast the prompt asks a clip to play (`playback.PACE_SPEEDS` says how fast each is)."""

# --- sound -------------------------------------------------------------------------------
BACKGROUND: Final = re.compile(
    r"\b(?:background|bgm|soundtrack|score|music|song|theme|throughout|all\s+along|"
    r"backing\s+track|whole\s+(?:video|film|clip|piece)|entire\s+(?:video|film|clip|piece))\b"
    r"|背景音乐|背景音|配乐|音乐|歌曲|主题曲|全程|贯穿|整段|整个视频|BGM",
    _I,
)

VOICE: Final = re.compile(
    r"\b(?:narrat(?:ion|or|es|ed)|voice[\s-]?overs?|voiceovers?|voices?|dialogue|speech|"
    r"monologue|spoken|speaks?|says?)\b|旁白|配音|解说|对白|台词|人声|独白|讲述",
    _I,
)
"""Audio that is someone speaking: it spans the video but plays once, never looped."""

WORD: Final = re.compile(r"[A-Za-z0-9']+|[\u3400-\u9fff]")
"""A word of English, or one Chinese character (two of which count as a word)."""

# --- light, look, weather and places ------------------------------------------------------
# Each table lists (kind, pattern); `first_named` picks the kind named earliest in a text.
# Times of day grade pictures and clips and light the scenes drawn for words alone; looks
# grade everything; weather falls over everything; places are what a drawn scene shows.
TimeOfDay = Literal["dawn", "morning", "noon", "golden_hour", "dusk", "night"]
Look = Literal["black_and_white", "warm", "cold", "vintage", "neon"]
Weather = Literal["rain", "snow", "fog"]
Place = Literal["sea", "mountains", "city", "forest", "desert", "snowfield", "space", "field"]

_TIMES: Final[tuple[tuple[TimeOfDay, str], ...]] = (
    ("golden_hour", r"\bgolden[\s-]hour\b|\bmagic\s+hour\b|黄金时刻|金色时光|夕照"),
    ("dawn", r"\b(?:dawn|daybreak|sunrise|first\s+light|break\s+of\s+day)\b"
     r"|黎明|拂晓|破晓|日出|清晨|晨曦|曙光"),
    ("dusk", r"\b(?:dusk|sunset|sundown|twilight|evening|nightfall)\b"
     r"|黄昏|傍晚|日落|夕阳|落日|暮色|晚霞"),
    ("night", r"\b(?:night(?:time|fall)?|midnight|moonlit|moonlight|starry|after\s+dark)\b"
     r"|夜晚|夜里|夜间|深夜|午夜|月光|月夜|星空|夜"),
    ("noon", r"\b(?:noon|midday|high\s+noon|broad\s+daylight|harsh\s+sun(?:light)?)\b"
     r"|正午|中午|烈日|艳阳"),
    ("morning", r"\b(?:morning|daytime|sunny|sunlit|daylight)\b|早晨|上午|早上|白天|晴天|阳光"),
)  # fmt: skip
_LOOKS: Final[tuple[tuple[Look, str], ...]] = (
    ("black_and_white", r"\b(?:black[\s-]and[\s-]white|b\s*&\s*w|monochrome|greyscale|"
     r"grayscale|noir)\b|黑白|单色"),
    ("vintage", r"\b(?:vintage|retro|film(?:ic)?\s+(?:look|grain|stock)|old\s+film|"
     r"sepia|nostalgic|faded|analog(?:ue)?|70s|1970s|super\s*8)\b|复古|怀旧|老电影|胶片|泛黄"),
    ("neon", r"\b(?:neon|cyberpunk|synthwave|vaporwave)\b|霓虹|赛博朋克"),
    ("warm", r"\b(?:warm(?:er|th)?|cozy|cosy|amber)\b|温暖|暖色|暖调|暖黄"),
    ("cold", r"\b(?:cold|cool\s+(?:tones?|colou?rs?|light)|icy|chilly|wintry|bleak)\b"
     r"|冷色|冷调|冰冷|寒冷|清冷"),
)  # fmt: skip
_WEATHER: Final[tuple[tuple[Weather, str], ...]] = (
    ("rain", r"\b(?:rain(?:s|ing|y|fall|drops?|storm)?|drizzl(?:e|ing)|downpour|showers?)\b"
     r"|下雨|雨天|雨中|大雨|小雨|细雨|暴雨|雨"),
    ("snow", r"\b(?:snow(?:s|ing|fall|flakes?|storm)?|blizzard)\b|下雪|雪花|飘雪|大雪|雪中"),
    ("fog", r"\b(?:fog(?:gy)?|mist(?:y)?|haz(?:e|y)|smog)\b|雾|烟雨|朦胧"),
)  # fmt: skip
_PLACES: Final[tuple[tuple[Place, str], ...]] = (
    ("space", r"\b(?:outer\s+space|space|galaxy|galaxies|nebula|cosmos|stars|starfield|"
     r"universe|planets?)\b|太空|宇宙|星系|星河|银河|星云|星空"),
    ("sea", r"\b(?:sea|seas|ocean|oceans|lake|lakes|bay|waves?|beach|shore|coast(?:line)?|"
     r"harbou?r|seaside)\b|大海|海洋|海面|海边|海浪|湖|湖面|海湾|海滩|沙滩|海"),
    ("mountains", r"\b(?:mountains?|peaks?|summits?|hills?|alps|ridges?|valley|cliffs?)\b"
     r"|山峰|群山|高山|山脉|山谷|山"),
    ("city", r"\b(?:city|cities|skyline|skyscrapers?|downtown|town|streets?|buildings?|"
     r"metropolis|urban|rooftops?)\b|城市|都市|天际线|高楼|街道|街头|城"),
    ("forest", r"\b(?:forests?|woods|woodland|trees?|jungle|grove)\b|森林|树林|丛林|树"),
    ("desert", r"\b(?:desert|dunes?|sand|sahara|canyon)\b|沙漠|沙丘|戈壁"),
    ("snowfield", r"\b(?:snowfields?|snowy|snow[\s-]covered|glaciers?|tundra|arctic|"
     r"frozen|ice\s+field)\b|雪地|雪原|冰川|雪山|冰原"),
    ("field", r"\b(?:fields?|meadows?|grass(?:land)?s?|prairie|farmland|countryside|"
     r"plains?|pasture)\b|田野|草原|草地|麦田|原野|稻田"),
)  # fmt: skip
# Where in the picture a move ends ("push in on the right", "镜头推近左边"); with none named,
# it ends on the picture's most salient region. Both axes may be named ("the top left").
Side = Literal["left", "right", "top", "bottom", "centre"]
_TOWARD = r"\b(?:on|to|at|in|into|onto|toward|towards)\s+the\s+"
_CORNER = r"(?:top|bottom|upper|lower)[\s-]+"
_SIDES: Final[tuple[tuple[Side, str], ...]] = (
    ("left", rf"{_TOWARD}(?:{_CORNER})?left\b|\bleft\s+(?:side|half|edge)\b"
     r"|左边|左侧|左方|左半"),
    ("right", rf"{_TOWARD}(?:{_CORNER})?right\b|\bright\s+(?:side|half|edge)\b"
     r"|右边|右侧|右方|右半"),
    ("top", rf"{_TOWARD}(?:top|upper)\b|\btop\s+(?:side|half|edge)\b|上方|上边|上半|顶部"),
    ("bottom", rf"{_TOWARD}(?:bottom|lower)\b|\bbottom\s+(?:side|half|edge)\b"
     r"|下方|下边|下半|底部"),
    ("centre", rf"{_TOWARD}(?:centre|center|middle)\b|中间|中央|正中"),
)  # fmt: skip
TIMES_OF_DAY: Final = tuple((kind, re.compile(source, _I)) for kind, source in _TIMES)
LOOKS: Final = tuple((kind, re.compile(source, _I)) for kind, source in _LOOKS)
WEATHER: Final = tuple((kind, re.compile(source, _I)) for kind, source in _WEATHER)
PLACES: Final = tuple((kind, re.compile(source, _I)) for kind, source in _PLACES)
SIDES: Final = tuple((kind, re.compile(source, _I)) for kind, source in _SIDES)

_K = TypeVar("_K", bound=str)


def all_named(table: tuple[tuple[_K, re.Pattern[str]], ...], text: str) -> frozenset[_K]:
    """Every kind of `table` whose words appear in `text`."""
    return frozenset(kind for kind, pattern in table if pattern.search(text))


def first_named(table: tuple[tuple[_K, re.Pattern[str]], ...], text: str) -> _K | None:
    """The kind of `table` whose words come earliest in `text` (ties: the table's order)."""
    best: tuple[int, int, _K] | None = None
    for order, (kind, pattern) in enumerate(table):
        match = pattern.search(text)
        if match is not None and (best is None or (match.start(), order) < best[:2]):
            best = (match.start(), order, kind)
    return best[2] if best else None
