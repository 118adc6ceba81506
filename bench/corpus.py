"""Synthetic sales calls at scale, deterministic by seed, with known query selectivity.

Call ``i`` of seed ``s`` depends on ``(s, i)`` only (its own ``random.Random``), so a corpus of
1k calls is the first 1k calls of the 100k corpus, and calls can be made in parallel.

What a call looks like:

* Russian (60 %) or English; 2–10 minutes; 40–200 utterances, one every ~3 s.
* Roles mostly alternate (a speaker sometimes continues); the next utterance starts after a
  pause of 0.2–1.5 s (now and then 3–6 s), or overlaps the previous one by up to 1 s (12 %).
* Words come from a Zipf-like vocabulary (exponent 1.05): a head of real conversational words
  followed by a long tail of made-up words (30k Russian, 20k English types), so term
  frequencies look like speech. Word times follow a per-speaker speech rate (2–3.2 words/s),
  each word's length proportional to its letters, with small gaps between words.
* Sales phrases (``PLANTS``: greetings, prices, competitors, objections, discounts, a contract
  request, one rare word) are planted at fixed rates into an utterance of the given role. Their
  words are kept out of the filler vocabulary, so how many calls contain them is set by the rate.
* ~200 managers (10 teams; Russian and English managers), ~30k clients, dates over two years.

Besides the calls, the generator records which *watched* patterns (every plant phrase and the
words of ``WATCHED_WORDS``) each call contains and in which role (``CallTruth``), so a benchmark
can check that a search found exactly the calls it should.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

DEFAULT_SEED = 7


def _split(words: str) -> list[str]:
    return words.split()


MANAGERS = 200
RU_MANAGERS = 120  # managers 0..119 speak Russian, the rest English
TEAMS = 10
CLIENTS = 30_000
RU_SHARE = 0.6
MIN_DURATION_S, MAX_DURATION_S = 120.0, 600.0
MIN_UTTERANCES, MAX_UTTERANCES = 40, 200
ZIPF_EXPONENT = 1.05
TAIL_TYPES = {"ru": 30_000, "en": 20_000}
FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 731

# Real conversational words: the head of each Zipf vocabulary, most frequent first.
HEAD = {
    "ru": _split(
        "да я вы не что это и в на ну а вот так мы то как у с там все хорошо нет можно "
        "есть по если но уже сейчас еще очень просто тоже когда вам нам для за понятно "
        "конечно давайте где они он она было будет их наш ваш от до из к же ли бы или "
        "здесь тут чтобы потому смотрите скажите подскажите знаете думаю говорю значит "
        "например именно вообще кстати наверное правильно точно слушайте понимаете "
        "работаем работает система компания клиент клиенты заказ заказы месяц год неделя "
        "день время вопрос вопросы сотрудники отдел продажи менеджеры данные доступ "
        "настройка интеграция сайт почта телефон звонок звонки отчет отчеты задача задачи "
        "проект сроки условия оплата счет тариф версия функции пользователи лицензия "
        "сервер облако поддержка обучение внедрение демонстрация пробный период решение "
        "руководитель директор бухгалтерия склад доставка товар поставка документы "
        "таблица понедельник вторник среда пятница утром вечером завтра сегодня потом "
        "сначала дальше примерно около человек десять двадцать пять три два один много "
        "мало больше меньше удобно быстро сложно легко интересно важно хотим хотел могу "
        "можем нужно надо посмотрим покажу расскажу отправлю получили видели сделали "
        "настроить подключить перенести выгрузить загрузить согласовать обсудить"
    ),
    "en": _split(
        "yeah i you the and to so we it that a of is in for okay right this on with just "
        "do have like well but be can are our your they what if not know think about "
        "would get really yes no sure great good all there at from or can't don't it's "
        "that's actually mean see need want let me my now then some more how when one "
        "two three five ten twenty team company customers sales pipeline deal deals month "
        "year week day time question people users data access setup integration website "
        "email phone call calls report reports task project timeline terms payment "
        "invoice plan version features license server cloud support training onboarding "
        "demo trial period solution manager director finance warehouse delivery product "
        "shipment documents spreadsheet monday tuesday friday morning afternoon tomorrow "
        "today later first next maybe around many less easy fast hard simple interesting "
        "important exactly probably fine show tell send look talk work working use using "
        "set move export import agree discuss"
    ),
}
_SYLLABLES = {
    "ru": _split(
        "ба ва га да за ка ла ма на па ра са та ха ча ша бо во го до зо ко ло мо но по ро "
        "со то ре ле ме не се те ви ли ми ни ри си ти ку лу му ну ру су ту ан ин он ер ол"
    ),
    "en": _split(
        "ba ca da fa ga la ma na pa ra sa ta va be de fe ge le me ne pe re se te bi di "
        "fi li mi ni pi ri si ti bo co do lo mo no po ro so to an en in on er or al ex"
    ),
}
_ENDINGS = {"ru": ["", "ть", "ние", "ка", "ный", "ой", "ами", "ов"], "en": ["", "s", "er", "ing"]}


@dataclass(frozen=True)
class Plant:
    """A sales phrase said by ``role`` in a share ``rate`` of the calls of ``language``."""

    id: str
    language: str
    role: str
    text: str
    rate: float
    opening: bool = False  # said at the start of the role's first utterance (greetings)


PLANTS: tuple[Plant, ...] = (
    Plant("ru-greeting", "ru", "manager", "добрый день меня зовут", 0.85, opening=True),
    Plant("ru-expensive", "ru", "client", "слишком дорого", 0.12),
    Plant("ru-expensive-for-us", "ru", "client", "дорого для нас", 0.10),
    Plant("ru-not-expensive", "ru", "manager", "совсем не дорого", 0.05),
    Plant("ru-discount", "ru", "manager", "скидка на первый год", 0.15),
    Plant("ru-discount-give", "ru", "manager", "можем дать скидку", 0.15),
    Plant("ru-contract", "ru", "client", "пришлите договор", 0.06),
    Plant("ru-think", "ru", "client", "нам надо подумать", 0.20),
    Plant("ru-price", "ru", "manager", "стоимость 15 000 рублей в месяц", 0.30),
    Plant("ru-proposal", "ru", "manager", "отправлю коммерческое предложение", 0.30),
    Plant("ru-amocrm", "ru", "client", "сейчас работаем в амоцрм", 0.08),
    Plant("ru-bitrix", "ru", "client", "у нас стоит битрикс", 0.08),
    Plant("ru-delivery", "ru", "client", "какие сроки доставки", 0.10),
    Plant("ru-rare", "ru", "client", "какая неустойка", 0.002),
    Plant("en-greeting", "en", "manager", "thanks for calling", 0.80, opening=True),
    Plant("en-expensive", "en", "client", "too expensive", 0.15),
    Plant("en-discount", "en", "manager", "we can offer a discount", 0.20),
    Plant("en-contract", "en", "client", "send me the contract", 0.06),
    Plant("en-think", "en", "client", "need to think about it", 0.20),
    Plant("en-price", "en", "manager", "it costs 1,500 dollars a month", 0.30),
    Plant("en-salesforce", "en", "client", "we use salesforce", 0.10),
    Plant("en-hubspot", "en", "client", "we are on hubspot", 0.08),
    Plant("en-rare", "en", "client", "indemnity clause", 0.002),
)

# Single words whose presence per call and role is recorded too (besides every plant phrase).
WATCHED_WORDS = {
    "ru": ("дорого", "скидка", "договор", "неустойка", "хорошо", "битрикс"),
    "en": ("expensive", "discount", "contract", "indemnity", "okay"),
}

# Trackers the benchmarks define before loading, as a sales team would (the loader tags every
# call with the ones it mentions; GET /v1/trackers/{id}/stats counts them).
BENCH_TRACKERS: tuple[dict[str, Any], ...] = (
    {
        "id": "pricing",
        "name": "Pricing objections",
        "phrases": ["дорого", "too expensive"],
        "role": "client",
    },
    {
        "id": "competitors",
        "name": "Competitors",
        "phrases": ["амоцрм", "битрикс", "salesforce", "hubspot"],
    },
    {
        "id": "discount",
        "name": "Discounts offered",
        "phrases": ["скидка", "discount"],
        "role": "manager",
        "mode": "forms",
    },
)

RU_FIRST = _split("Анна Дмитрий Елена Сергей Ольга Алексей Мария Иван Наталья Павел Ирина Андрей")
RU_LAST = _split("Петров Смирнов Кузнецов Попов Васильев Соколов Михайлов Новиков Федоров Морозов")
EN_FIRST = _split("Emma James Olivia John Sophia Michael Ava David Mia Daniel Grace Ryan")
EN_LAST = _split("Smith Johnson Brown Taylor Miller Wilson Moore Clark Lewis Walker Hall Young")
COMPANY = {
    "ru": _split("Альфа Вектор Горизонт Статус Прайм Север Лидер Меридиан"),
    "en": _split("Apex Orbit Nimbus Vertex Summit Harbor Keystone Pioneer"),
}
TIMEZONES = {"ru": timezone(timedelta(hours=3)), "en": timezone(timedelta(hours=-5))}


def _terms(text: str) -> tuple[str, ...]:
    """The folded search terms of a planted phrase, as the index will see them."""
    # Imported here so that generating calls does not need the indexer on every import path.
    from indexer.search import terms_of_text

    return tuple(terms_of_text(text))


@dataclass
class _Vocabulary:
    words: list[str]
    cum_weights: list[float]


def _tail_split(language: str, count: int, reserved: set[str], rng: random.Random) -> list[str]:
    syllables, endings = _SYLLABLES[language], _ENDINGS[language]
    made: dict[str, None] = {}
    while len(made) < count:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        word += rng.choice(endings)
        if word not in reserved:
            made[word] = None
    return list(made)


def _vocabulary(language: str, seed: int) -> _Vocabulary:
    # Plant words and watched words are kept out of the filler, so that a plant's rate is its
    # selectivity; the real head words a plant happens to use ("для", "нас", "the") stay, and so
    # do the watched common words ("хорошо", "okay").
    head = HEAD[language]
    reserved = {
        term for plant in PLANTS if plant.language == language for term in _terms(plant.text)
    }
    reserved = (reserved | set(WATCHED_WORDS[language])) - set(head)
    tail = _tail_split(
        language, TAIL_TYPES[language], reserved | set(head), random.Random(f"{seed}:{language}")
    )
    words = head + tail
    weights = [1.0 / (rank**ZIPF_EXPONENT) for rank in range(1, len(words) + 1)]
    return _Vocabulary(words, list(itertools.accumulate(weights)))


@dataclass(frozen=True)
class CallTruth:
    """What a generated call contains, for checking search results: per watched pattern (the
    space-joined terms), the roles that said it."""

    call_id: str
    language: str
    manager_id: str
    started_at: str
    said: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "language": self.language,
            "manager_id": self.manager_id,
            "started_at": self.started_at,
            "said": self.said,
        }


class CorpusGenerator:
    """Makes call ``i`` of a seed; cheap to create per process (vocabulary built once)."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self.vocabulary = {language: _vocabulary(language, seed) for language in ("ru", "en")}
        self.plants = {
            language: [plant for plant in PLANTS if plant.language == language]
            for language in ("ru", "en")
        }
        # Watched patterns as the generator's raw words, each with the key it is recorded
        # under: its search terms joined by spaces ("15 000" is the one term "15000").
        self.watched: dict[str, dict[tuple[str, ...], str]] = {}
        for language in ("ru", "en"):
            patterns = {tuple(_split(p.text)): p.text for p in self.plants[language]}
            patterns |= {(word,): word for word in WATCHED_WORDS[language]}
            self.watched[language] = {
                words: " ".join(_terms(text)) for words, text in sorted(patterns.items())
            }

    # --- people and metadata ------------------------------------------------------------------

    def manager(self, number: int) -> dict[str, str]:
        rng = random.Random(f"{self.seed}:manager:{number}")
        first, last = (RU_FIRST, RU_LAST) if number < RU_MANAGERS else (EN_FIRST, EN_LAST)
        return {
            "id": f"m-{number:03d}",
            "name": f"{rng.choice(first)} {rng.choice(last)}",
            "team": f"team-{number % TEAMS:02d}",
        }

    def client(self, number: int, language: str) -> dict[str, str]:
        rng = random.Random(f"{self.seed}:client:{number}")
        first, last = (RU_FIRST, RU_LAST) if language == "ru" else (EN_FIRST, EN_LAST)
        country = "+7 9" if language == "ru" else "+1 2"
        return {
            "id": f"c-{number:05d}",
            "name": f"{rng.choice(first)} {rng.choice(last)}, {rng.choice(COMPANY[language])}",
            "phone": f"{country}{rng.randint(10, 99)} {rng.randint(100, 999)}-"
            f"{rng.randint(10, 99)}-{rng.randint(10, 99)}",
        }

    # --- one call -------------------------------------------------------------------------------

    def call(self, index: int) -> tuple[dict[str, Any], CallTruth]:
        """Call ``index`` as transcript JSON (``indexer.transcript.Call``), and its truth."""
        rng = random.Random(f"earshot-corpus:{self.seed}:{index}")
        language = "ru" if rng.random() < RU_SHARE else "en"
        if language == "ru":
            manager_number = rng.randrange(RU_MANAGERS)
        else:
            manager_number = rng.randrange(RU_MANAGERS, MANAGERS)
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        local = datetime.combine(day.date(), datetime.min.time(), TIMEZONES[language])
        started = local + timedelta(seconds=rng.randrange(9 * 3600, 19 * 3600))
        target_s = rng.triangular(MIN_DURATION_S, MAX_DURATION_S, 240.0)
        count = round(target_s / rng.uniform(2.6, 3.4))
        count = min(max(count, MIN_UTTERANCES), MAX_UTTERANCES)

        roles = self._roles(rng, count)
        word_lists = self._word_lists(rng, language, roles, target_s)
        self._plant(rng, language, roles, word_lists)
        utterances, end_s = self._timed_utterances(rng, roles, word_lists, target_s)
        duration_s = round(min(MAX_DURATION_S, max(target_s, end_s + rng.uniform(0.3, 2.0))), 3)

        call_id = f"bench-{self.seed}-{index:07d}"
        client_number = rng.randrange(CLIENTS)
        document = {
            "call_id": call_id,
            "started_at": started.isoformat(),
            "duration_s": duration_s,
            "language": language,
            "direction": "outbound" if rng.random() < 0.55 else "inbound",
            "manager": self.manager(manager_number),
            "client": self.client(client_number, language),
            "audio": {
                "uri": f"s3://earshot-bench/{call_id}.wav",
                "channels": 2,
                "sample_rate": 8000,
            },
            "asr": {
                "engine": "synthetic",
                "model": "gen-corpus",
                "aligned": True,
                "diarization": "channels",
            },
            "utterances": utterances,
            "warnings": [],
        }
        truth = CallTruth(
            call_id=call_id,
            language=language,
            manager_id=f"m-{manager_number:03d}",
            started_at=started.isoformat(),
            said=self._said(language, roles, word_lists),
        )
        return document, truth

    @staticmethod
    def _roles(rng: random.Random, count: int) -> list[str]:
        role = "manager" if rng.random() < 0.9 else "client"
        roles = []
        for _ in range(count):
            roles.append(role)
            if rng.random() < 0.85:
                role = "client" if role == "manager" else "manager"
        return roles

    def _word_lists(
        self, rng: random.Random, language: str, roles: list[str], target_s: float
    ) -> list[list[str]]:
        vocabulary = self.vocabulary[language]
        # Time per utterance, ~80 % of it speech at ~2.6 words/s: words per utterance.
        mean_words = max(2.0, target_s / len(roles) * 0.8 * 2.6)
        lists = []
        for _ in roles:
            n = max(1, min(60, round(rng.lognormvariate(0, 0.6) * mean_words * 0.85)))
            lists.append(rng.choices(vocabulary.words, cum_weights=vocabulary.cum_weights, k=n))
        return lists

    def _plant(
        self, rng: random.Random, language: str, roles: list[str], word_lists: list[list[str]]
    ) -> None:
        """Insert each plant at its rate, at most one plant per utterance (so two plants never
        touch and form a phrase nobody planted)."""
        used: set[int] = set()
        for plant in self.plants[language]:
            if rng.random() >= plant.rate:
                continue
            candidates = [i for i, role in enumerate(roles) if role == plant.role and i not in used]
            if not candidates:
                continue
            target = candidates[0] if plant.opening else rng.choice(candidates)
            used.add(target)
            words = _split(plant.text)
            at = 0 if plant.opening else rng.randint(0, len(word_lists[target]))
            word_lists[target][at:at] = words

    def _said(
        self, language: str, roles: list[str], word_lists: list[list[str]]
    ) -> dict[str, list[str]]:
        """Which watched patterns each role said. Matching the generator's raw words is exact:
        filler words are lower-case letters, and punctuation is only added to the written text,
        which the term rules strip again."""
        by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for pattern, key in self.watched[language].items():
            by_first.setdefault(pattern[0], []).append((pattern, key))
        said: dict[str, set[str]] = {}
        for role, words in zip(roles, word_lists, strict=True):
            for at, word in enumerate(words):
                for pattern, key in by_first.get(word, ()):
                    if tuple(words[at : at + len(pattern)]) == pattern:
                        said.setdefault(key, set()).add(role)
        return {key: sorted(value) for key, value in sorted(said.items())}

    @staticmethod
    def _timed_utterances(
        rng: random.Random, roles: list[str], word_lists: list[list[str]], target_s: float
    ) -> tuple[list[dict[str, Any]], float]:
        rate = {role: rng.uniform(2.0, 3.2) for role in ("manager", "client")}
        clock = rng.uniform(0.3, 1.5)
        raw: list[tuple[str, list[tuple[str, float, float]]]] = []
        for role, words in zip(roles, word_lists, strict=True):
            per_word = 1.0 / rate[role]
            mean_len = sum(len(w) for w in words) / len(words)
            timed = []
            t = clock
            for word in words:
                length = per_word * 0.82 * (0.5 + 0.5 * len(word) / mean_len)
                timed.append((word, t, t + length))
                t += length + per_word * rng.uniform(0.08, 0.28)
            raw.append((role, timed))
            end = timed[-1][2]
            roll = rng.random()
            if roll < 0.12:
                clock = max(timed[0][1] + 0.1, end - rng.uniform(0.1, 1.0))  # overlap
            elif roll < 0.17:
                clock = end + rng.uniform(3.0, 6.0)  # a long pause: someone looks something up
            else:
                clock = end + rng.uniform(0.2, 1.5)
        natural_end = max(timed[-1][2] for _, timed in raw)
        # Stretch or squeeze time so that the talk ends before the target duration (speech rate
        # moves with it; stretching stops at 1.25×, leaving the rest of the call silent).
        scale = min(1.25, (target_s - 1.0) / natural_end)
        utterances = []
        for role, timed in raw:
            words_json = []
            texts = []
            for position, (word, start, end) in enumerate(timed):
                text = word.capitalize() if position == 0 else word
                if position == len(timed) - 1:
                    text += "?" if rng.random() < 0.2 else "."
                elif rng.random() < 0.06:
                    text += ","
                texts.append(text)
                words_json.append(
                    {
                        "text": text,
                        "start": round(start * scale, 3),
                        "end": round(end * scale, 3),
                        "score": round(rng.uniform(0.55, 1.0), 2),
                    }
                )
            utterances.append(
                {
                    "speaker": "SPEAKER_00" if role == "manager" else "SPEAKER_01",
                    "role": role,
                    "start": words_json[0]["start"],
                    "end": words_json[-1]["end"],
                    "text": " ".join(texts),
                    "words": words_json,
                }
            )
        return utterances, natural_end * scale

    def calls(self, start: int, stop: int) -> Iterator[tuple[dict[str, Any], CallTruth]]:
        for index in range(start, stop):
            yield self.call(index)


def call_line(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


# --- Writing a corpus -----------------------------------------------------------------------------

SHARD_CALLS = 10_000
BLOCK_CALLS = 250  # calls per task handed to a worker process

_worker_generator: CorpusGenerator | None = None


def _init_worker(seed: int) -> None:
    global _worker_generator
    _worker_generator = CorpusGenerator(seed)


def _block(bounds: tuple[int, int]) -> list[tuple[str, str, int, int, float]]:
    """Calls ``start..stop`` as (call line, truth line, utterances, words, duration)."""
    assert _worker_generator is not None
    made = []
    for document, truth in _worker_generator.calls(*bounds):
        utterances = document["utterances"]
        made.append(
            (
                call_line(document),
                json.dumps(truth.to_json(), ensure_ascii=False, separators=(",", ":")),
                len(utterances),
                sum(len(u["words"]) for u in utterances),
                float(document["duration_s"]),
            )
        )
    return made


def shard_name(number: int) -> str:
    return f"calls-{number:04d}.jsonl"


def generate_corpus(out: Path, count: int, *, seed: int, workers: int) -> dict[str, Any]:
    """Write ``count`` calls, their truth and a manifest under ``out``; return the manifest."""
    import multiprocessing
    import time

    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("calls-*.jsonl"):
        stale.unlink()
    started = time.perf_counter()
    blocks = [(s, min(s + BLOCK_CALLS, count)) for s in range(0, count, BLOCK_CALLS)]
    said_calls: dict[str, dict[str, int]] = {}
    utterances: list[int] = []
    words: list[int] = []
    durations: list[float] = []
    shard = None
    written = 0
    with (
        multiprocessing.get_context("fork").Pool(
            max(1, workers), initializer=_init_worker, initargs=(seed,)
        ) as pool,
        (out / "truth.jsonl").open("w", encoding="utf-8") as truth_file,
    ):
        for block in pool.imap(_block, blocks):
            for line, truth_line, n_utterances, n_words, duration in block:
                if written % SHARD_CALLS == 0:
                    if shard is not None:
                        shard.close()
                    shard = (out / shard_name(written // SHARD_CALLS)).open("w", encoding="utf-8")
                assert shard is not None
                shard.write(line + "\n")
                truth_file.write(truth_line + "\n")
                for key, roles in json.loads(truth_line)["said"].items():
                    counts = said_calls.setdefault(key, {})
                    for role in [*roles, "any"]:
                        counts[role] = counts.get(role, 0) + 1
                utterances.append(n_utterances)
                words.append(n_words)
                durations.append(duration)
                written += 1
    if shard is not None:
        shard.close()
    megabytes = sum(path.stat().st_size for path in out.glob("calls-*.jsonl")) / 1e6
    manifest = {
        "seed": seed,
        "count": count,
        "plants": [
            {
                "id": plant.id,
                "language": plant.language,
                "role": plant.role,
                "text": plant.text,
                "rate": plant.rate,
            }
            for plant in PLANTS
        ],
        "calls_saying": dict(sorted(said_calls.items())),
        "stats": {
            "megabytes": round(megabytes, 1),
            "utterances_mean": sum(utterances) / count,
            "utterances_min": min(utterances),
            "utterances_max": max(utterances),
            "words_mean": sum(words) / count,
            "duration_s_mean": sum(durations) / count,
            "duration_s_min": min(durations),
            "duration_s_max": max(durations),
            "generation_s": round(time.perf_counter() - started, 1),
        },
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def corpus_files(corpus: Path) -> list[Path]:
    files = sorted(corpus.glob("calls-*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no calls-*.jsonl in {corpus}: run scripts/gen-corpus first")
    return files


def read_truth(corpus: Path, limit: int) -> list[dict[str, Any]]:
    """The truth records of the first ``limit`` calls."""
    records = []
    with (corpus / "truth.jsonl").open(encoding="utf-8") as handle:
        for line in itertools.islice(handle, limit):
            records.append(json.loads(line))
    return records
