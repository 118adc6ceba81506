"""Transliteration keys measured on a fixed list: brands in both scripts, ordinary words.

``BRANDS`` pairs each Latin spelling with the Cyrillic spellings a recognizer writes for it;
each should meet (recall). ``ORDINARY_LATIN`` and ``ORDINARY_CYRILLIC`` are frequent words of
English and Russian sales calls: any Latin word meeting a Cyrillic word that is not its listed
spelling is a false friend (precision). ``scripts/measure-transliteration`` prints the figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.search.transliteration import indexed_key, variant_keys

BRANDS: dict[str, tuple[str, ...]] = {
    "salesforce": ("сейлсфорс", "сэйлсфорс"),
    "hubspot": ("хабспот",),
    "bitrix": ("битрикс",),
    "bitrix24": ("битрикс24",),
    "amocrm": ("амосрм", "амоцрм"),
    "retailcrm": ("ритейлсрм", "ретейлцрм"),
    "megaplan": ("мегаплан",),
    "pipedrive": ("пайпдрайв",),
    "zendesk": ("зендеск",),
    "roistat": ("ройстат",),
    "calltouch": ("коллтач",),
    "mailchimp": ("мейлчимп",),
    "microsoft": ("майкрософт",),
    "google": ("гугл",),
    "gmail": ("джимейл",),
    "yandex": ("яндекс",),
    "zoom": ("зум",),
    "skype": ("скайп",),
    "excel": ("эксель",),
    "oracle": ("оракл",),
    "jira": ("джира",),
    "slack": ("слак",),
    "notion": ("ноушн",),
    "telegram": ("телеграм",),
    "whatsapp": ("вотсап", "ватсап"),
    "tinkoff": ("тинькофф",),
    "sber": ("сбер",),
    "wildberries": ("вайлдберриз",),
    "ozon": ("озон",),
    "avito": ("авито",),
    "iphone": ("айфон",),
    "android": ("андроид",),
    "windows": ("виндоус",),
    "facebook": ("фейсбук",),
    "youtube": ("ютуб",),
    "instagram": ("инстаграм",),
    "apple": ("эппл",),
    "samsung": ("самсунг",),
    "huawei": ("хуавей",),
    "outlook": ("аутлук",),
    "dropbox": ("дропбокс",),
    "trello": ("трелло",),
    "teams": ("тимс",),
    "office": ("офис",),
    "kaspersky": ("касперский",),
}

# Words of the ordinary lists that are the same word in both languages: meeting is right.
COGNATES: dict[str, tuple[str, ...]] = {
    "account": ("аккаунт",),
    "client": ("клиент",),
    "company": ("компания",),
    "demo": ("демо",),
    "director": ("директор",),
    "license": ("лицензия",),
    "plan": ("план",),
    "problem": ("проблема",),
    "product": ("продукт",),
    "service": ("сервис",),
    "stop": ("стоп",),
    "budget": ("бюджет",),
    "integration": ("интеграция",),
    "system": ("система",),
    "program": ("программа",),
}

ORDINARY_LATIN = [
    "price",
    "prices",
    "discount",
    "contract",
    "invoice",
    "payment",
    "delivery",
    "order",
    "customer",
    "client",
    "manager",
    "meeting",
    "call",
    "email",
    "send",
    "thanks",
    "hello",
    "goodbye",
    "yes",
    "no",
    "maybe",
    "today",
    "tomorrow",
    "week",
    "month",
    "year",
    "budget",
    "cost",
    "cheap",
    "expensive",
    "deal",
    "offer",
    "proposal",
    "demo",
    "trial",
    "license",
    "support",
    "service",
    "team",
    "company",
    "product",
    "feature",
    "report",
    "integration",
    "account",
    "number",
    "phone",
    "question",
    "problem",
    "agree",
    "decision",
    "director",
    "boss",
    "quality",
    "time",
    "money",
    "sale",
    "sales",
    "market",
    "plan",
    "start",
    "stop",
    "sorry",
    "right",
    "good",
    "great",
    "fine",
    "okay",
    "please",
    "sure",
    "think",
    "know",
    "want",
    "need",
    "sign",
    "signed",
    "system",
    "program",
]

ORDINARY_CYRILLIC = [
    "цена",
    "цены",
    "скидка",
    "договор",
    "счет",
    "оплата",
    "доставка",
    "заказ",
    "клиент",
    "менеджер",
    "встреча",
    "звонок",
    "почта",
    "отправить",
    "спасибо",
    "здравствуйте",
    "добрый",
    "день",
    "до",
    "свидания",
    "да",
    "нет",
    "может",
    "сегодня",
    "завтра",
    "неделя",
    "месяц",
    "год",
    "бюджет",
    "стоимость",
    "дешево",
    "дорого",
    "сделка",
    "предложение",
    "демо",
    "пробный",
    "лицензия",
    "поддержка",
    "сервис",
    "команда",
    "компания",
    "продукт",
    "функция",
    "отчет",
    "интеграция",
    "аккаунт",
    "номер",
    "телефон",
    "вопрос",
    "проблема",
    "согласен",
    "решение",
    "директор",
    "начальник",
    "качество",
    "время",
    "деньги",
    "продажа",
    "рынок",
    "план",
    "начать",
    "стоп",
    "извините",
    "хорошо",
    "отлично",
    "понятно",
    "пожалуйста",
    "конечно",
    "думаю",
    "знаю",
    "хочу",
    "надо",
    "подписать",
    "сумма",
    "семь",
    "сам",
    "сом",
    "сапог",
    "суп",
    "слово",
    "сыр",
    "море",
    "тема",
    "тоже",
    "тысяча",
    "рублей",
    "процентов",
    "можно",
    "давайте",
    "сейчас",
    "потом",
    "тогда",
    "очень",
    "просто",
    "прямо",
    "вообще",
    "сразу",
    "всегда",
    "только",
    "потому",
    "работа",
    "работать",
    "система",
    "программа",
    "сайт",
    "срок",
    "условия",
    "вариант",
    "зовут",
    "меня",
    "вас",
    "нас",
]


@dataclass(frozen=True)
class Figures:
    pairs: int
    found: int
    matched: int
    false_friends: list[tuple[str, str]]
    missed: list[tuple[str, str]]

    @property
    def recall(self) -> float:
        return self.found / self.pairs

    @property
    def precision(self) -> float:
        return (self.found / self.matched) if self.matched else 1.0


def meets(query: str, word: str) -> bool:
    return indexed_key(word) in variant_keys(query)


def measure() -> Figures:
    """Every Latin word of the list queried against every Cyrillic word, and back."""
    latin = sorted(set(BRANDS) | set(COGNATES) | set(ORDINARY_LATIN))
    cyrillic = sorted(
        {s for spellings in BRANDS.values() for s in spellings} | set(ORDINARY_CYRILLIC)
    )
    pairs = {**BRANDS, **COGNATES}
    truth = {(lat, cyr) for lat, spellings in pairs.items() for cyr in spellings}
    matched: set[tuple[str, str]] = set()
    for lat in latin:
        for cyr in cyrillic:
            # Either direction of query counts: Latin typed, Cyrillic said, or the other way.
            if meets(lat, cyr) or meets(cyr, lat):
                matched.add((lat, cyr))
    found = truth & matched
    return Figures(
        pairs=len(truth),
        found=len(found),
        matched=len(matched),
        false_friends=sorted(matched - truth),
        missed=sorted(truth - matched),
    )
