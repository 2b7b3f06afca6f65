"""General English word tables for the guards: function words, numbers, negators, units, opposites."""

from __future__ import annotations

from types import MappingProxyType

# Words that carry grammar rather than topic: a paraphrase adds, drops or swaps them freely.
FUNCTION_WORDS = frozenset(
    """
    a an the this that these those some any each every all both either neither such own same other another
    i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself she her
    hers herself it its itself they them their theirs themselves one ones someone somebody something anyone
    anybody anything everyone everybody everything people person
    what which who whom whose when where why how whether
    is am are was were be been being do does did doing done have has had having get gets got getting
    can could may might must shall should will would ought need
    and or but if then else so than too very just also even yet ever really actually exactly
    of in on at by for with about against between into through during before after above below to from up
    down out off over under again further once here there via per as like
    not no nor never
    way ways thing things kind type types best good better
    """.split()
)

NEGATORS = frozenset("not no never without none nobody nothing nowhere neither nor cannot".split())

_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
_TEENS = "seventeen eighteen nineteen"
NUMBER_WORDS = MappingProxyType(
    {word: value for value, word in enumerate(f"{_UNITS} {_TEENS}".split())}
    | {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
    | {"dozen": 12}
)
ORDINAL_WORDS = MappingProxyType(
    {
        word: value
        for value, word in enumerate(
            "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
        )
    }
)
# A scale word multiplies the number before it ("5 thousand", "10k", "$3bn"); alone it is a number itself.
# "10m" could be metres, so "m" is no scale.
SCALES = MappingProxyType(
    {"hundred": 100, "thousand": 1_000, "k": 1_000, "lakh": 100_000, "million": 1_000_000, "mn": 1_000_000}
    | {"crore": 10_000_000, "billion": 1_000_000_000, "bn": 1_000_000_000}
    | {"trillion": 1_000_000_000_000, "tn": 1_000_000_000_000}
)
# After a currency sign a letter is a scale too: "$356M", "$55B", "€3bn" (without one, "10m" may be metres).
CURRENCY_SCALES = MappingProxyType(SCALES | {"m": 1_000_000, "b": 1_000_000_000, "t": 1_000_000_000_000})

# "one" after these ("which one", "can one") or before these ("one should") is a pronoun, not the number 1.
ONE_AS_PRONOUN_BEFORE = frozenset(
    "which the this that every any each no can could should would will must may might does do did is was for if "
    "when".split()
)
ONE_AS_PRONOUN_AFTER = frozenset(
    "of another should can could would will must may might is was has does do who that which or and".split()
)
# Words that mean "one of": "a day" asks what "1 day" asks.
SINGULAR_ARTICLES = frozenset("a an one single".split())

# Proper names that questions often write in lower case.
CALENDAR_NAMES = frozenset(
    """
    january february april june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    """.split()
)

# Units grouped by what they measure: "2 hours" and "2 days" ask different questions.
UNIT_DIMENSIONS = MappingProxyType(
    {
        "time": frozenset("second minute hour day week month year decade century".split()),
        "length": frozenset("mm cm metre meter km inch foot feet yard mile".split()),
        "mass": frozenset("mg gram kg kilogram lb pound ounce ton tonne".split()),
        "money": frozenset("$ € £ ₹ ¥ usd eur gbp inr rs rupee dollar euro yen".split()),
        "temperature": frozenset("celsius fahrenheit kelvin".split()),
        "data": frozenset("kb mb gb tb byte".split()),
    }
)
# Spellings of one unit: "$200" and "200 USD" are the same amount.
UNIT_ALIASES = MappingProxyType(
    {"$": "dollar", "usd": "dollar", "€": "euro", "eur": "euro", "£": "gbp", "₹": "rupee", "inr": "rupee"}
    | {"rs": "rupee", "¥": "yen", "metre": "meter", "feet": "foot", "kilogram": "kg"}
)

QUESTION_WORDS = MappingProxyType(
    {"who": "who", "whom": "who", "whose": "who", "when": "when", "where": "where", "why": "why"}
    | {"what": "open", "which": "open", "how": "open"}
)
# "How do I get X" and "What is the best way to get X" ask the same; "when" and "where" never do.
SPECIFIC_QUESTIONS = frozenset({"who", "when", "where", "why", "quantity"})
YES_NO_OPENERS = frozenset(
    "is are am was were can could do does did will would should shall has have had may might must".split()
)

# "X and Y" asks what "Y and X" asks; so do "X vs Y" and "between X and Y".
SYMMETRIC_JOINERS = frozenset("and or vs versus & between , /".split())
# "ethanol to acid" and "acid to ethanol" ask opposite things.
DIRECTED_RELATIONS = frozenset("than to from into onto toward towards over against".split())

_OPPOSITE_PAIRS = """
    high low higher lower highest lowest up down increase decrease rise fall more less most least best worst
    good bad better worse big small bigger smaller biggest smallest large tiny larger smaller long short
    longer shorter fast slow faster slower early late earlier later old new older newer young old hot cold
    warm cool strong weak heavy light easy hard easier harder cheap expensive rich poor open close buy sell
    import export win lose won lost start stop begin end before after first last male female man woman men women
    boy girl boys girls husband wife father mother son daughter brother sister king queen advantage disadvantage
    advantages disadvantages pros cons positive negative gain loss profit loss true false right wrong left right
    north south east west inside outside input output min max minimum maximum add remove love hate like dislike
    accept reject legal illegal possible impossible safe unsafe healthy unhealthy happy sad same different
    he she his her him her guy girl
    """.split()


def _opposites(words: list[str]) -> MappingProxyType[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for first, second in zip(words[::2], words[1::2], strict=True):
        table.setdefault(first, set()).add(second)
        table.setdefault(second, set()).add(first)
    return MappingProxyType({word: frozenset(opposites) for word, opposites in table.items()})


OPPOSITES = _opposites(_OPPOSITE_PAIRS)
