"""The fake's JSON-Schema instances validate against the schemas pydantic and the two SDKs emit, and are stable."""

import datetime
import decimal
import enum
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from anthropic.lib._parse._transform import transform_schema
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field, HttpUrl

from llmproxy.fake_upstream.schema_instances import instance_of

SEED = "what is redis"


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 5


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=8)
    number: int = Field(ge=10, le=20)
    tags: list[str] = Field(min_length=2, max_length=3)


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(gt=0, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Node(BaseModel):
    value: int
    children: list["Node"]
    parent: "Node | None" = None


class Person(BaseModel):
    name: str
    color: Color
    priority: Priority
    home: Address
    work: Address | None = None
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    born: datetime.date
    seen: datetime.datetime
    wakes: datetime.time
    notice: datetime.timedelta
    id: uuid.UUID
    site: HttpUrl
    balance: decimal.Decimal
    ratio: float = Field(gt=0, lt=1)
    step: int = Field(multiple_of=7, gt=10)
    code: str = Field(pattern=r"^[a-z]+$")
    mood: Literal["calm", "busy"]
    labels: set[str] = Field(min_length=3)
    scores: dict[str, int]
    family: Node


class Report(BaseModel):
    title: str
    people: list[Person] = Field(min_length=1)


class Pair(BaseModel):
    pair: tuple[int, str]
    triple: tuple[bool, Color, float] | None


# The schema as pydantic writes it, as openai's `parse` sends it (strict), as anthropic's `parse` sends it.
SCHEMAS: dict[str, Callable[[type[BaseModel]], dict[str, Any]]] = {
    "pydantic": lambda model: model.model_json_schema(),
    "openai-strict": to_strict_json_schema,
    "anthropic": transform_schema,
}


def assert_valid(schema: Any, value: Any) -> None:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(value)


@pytest.mark.parametrize("variant", SCHEMAS)
@pytest.mark.parametrize("model", [Address, Person, Report, Node])
def test_instance_validates_against_the_schema_and_the_model(model: type[BaseModel], variant: str) -> None:
    schema = SCHEMAS[variant](model)
    value = instance_of(schema, SEED)
    assert_valid(schema, value)
    model.model_validate(value)


# Not the Anthropic variant: its SDK moves a tuple's prefixItems into a description, for the model to read.
@pytest.mark.parametrize("variant", ["pydantic", "openai-strict"])
def test_tuples_get_one_item_per_position(variant: str) -> None:
    schema = SCHEMAS[variant](Pair)
    value = instance_of(schema, SEED)
    assert_valid(schema, value)
    assert Pair.model_validate(value).pair == (1, f"{SEED} 2")


def test_constraints_the_anthropic_sdk_moves_into_descriptions_are_still_met() -> None:
    value = instance_of(SCHEMAS["anthropic"](Address), SEED)
    address = Address.model_validate(value)  # the transformed schema alone would allow a short street, any number
    assert 10 <= address.number <= 20 and 3 <= len(address.street) <= 8 and len(address.tags) == 2


def test_instance_is_deterministic_and_built_around_the_seed() -> None:
    schema = Person.model_json_schema()
    assert instance_of(schema, SEED) == instance_of(schema, SEED)
    person = Person.model_validate(instance_of(schema, SEED))
    assert person.name == SEED and person.color is Color.RED and person.mood == "calm"
    assert person.pet.kind == "cat" and person.step == 14 and 0 < person.ratio < 1
    assert len(person.labels) == 3  # unique items differ by their number
    assert person.work is None  # optional properties are left out


def test_recursive_schema_ends() -> None:
    value = instance_of(to_strict_json_schema(Node), SEED)
    assert_valid(to_strict_json_schema(Node), value)
    depth, node = 0, value
    while isinstance(node, dict) and node["children"]:
        node, depth = node["children"][0], depth + 1
    assert 1 <= depth < 10


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 5, "exclusiveMinimum": True},  # draft 4 exclusive bound
        {"type": "number", "exclusiveMinimum": 2.5, "exclusiveMaximum": 2.75},
        {"type": "number", "maximum": -3},
        {"type": "integer", "multipleOf": 4, "minimum": 9, "maximum": 15},
        {"type": ["string", "null"], "minLength": 20},
        {"type": "string", "nullable": True, "format": "email"},
        {"type": "string", "maxLength": 0},
        {"type": "array", "prefixItems": [{"type": "integer"}, {"const": "x"}], "items": False},
        {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 3, "uniqueItems": True},
        {"type": "object", "properties": {"a": {"type": "integer"}}, "minProperties": 1},
        {"type": "object", "additionalProperties": {"type": "boolean"}},
        {"type": "object", "additionalProperties": False},
        {"allOf": [{"$ref": "#/definitions/A"}, {"required": ["b"], "properties": {"b": {"type": "null"}}}]},
        {"oneOf": [{"type": "null"}, {"type": "object", "required": ["z"], "properties": {"z": {"const": 3}}}]},
        {"properties": {"k": {"type": "boolean"}}, "required": ["k"]},  # an object by its keywords
        {"type": "string", "pattern": "^[0-9]+$"},
        {},
    ],
)
def test_hand_written_schemas_get_valid_instances(schema: dict[str, Any]) -> None:
    document = {**schema, "definitions": {"A": {"type": "object", "required": ["a"], "properties": {"a": {}}}}}
    assert_valid(document, instance_of(document, SEED))


def test_object_without_required_properties_carries_the_seed_as_input() -> None:
    assert instance_of({"type": "object", "properties": {"city": {"type": "string"}}}, SEED) == {"input": SEED}
    assert instance_of({"type": "object", "properties": {}, "additionalProperties": False}, SEED) == {}
    assert instance_of({"type": "object", "properties": {"input": {"type": "integer"}}}, SEED) == {"input": 1}
