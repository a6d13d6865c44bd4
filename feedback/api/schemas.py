"""Marshmallow schemas of the API: what comes in, what goes out, and the OpenAPI."""

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

import phonenumbers
from email_validator import EmailNotValidError
from email_validator import validate_email
from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import post_load
from marshmallow import pre_load
from marshmallow import validate
from marshmallow import validates
from marshmallow import validates_schema

from feedback import periods
from feedback.delivery import windows
from feedback.models import CHANNELS
from feedback.models import INVITATION_STATUSES
from feedback.models import KINDS
from feedback.models import MAX_ID
from feedback.models import RESPONSE_CHANNELS
from feedback.models import STAGES
from feedback.models import SUPPRESSION_KINDS
from feedback.properties import NAME as PROPERTY_NAME
from feedback.properties import NAME_RULE as PROPERTY_NAME_RULE

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
LOCALE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
MAX_DELAY_MINUTES = 60 * 24 * 365
CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def validate_timezone(value: str | None) -> None:
    if value is not None:
        try:
            periods.zone(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


def check_window(start: str | None, end: str | None) -> None:
    """Raise a ValidationError unless the window opens before it closes."""
    if start and end and windows.parse_time(start) >= windows.parse_time(end):
        raise ValidationError(
            f"The send window must open before it closes: {start} is not before {end}.",
            "send_window_end",
        )


def text_problem(value) -> str | None:
    """Say what makes a text unstorable: a NUL, or half of a surrogate pair."""
    if "\x00" in value:
        return "contains a NUL character"
    if any("\ud800" <= char <= "\udfff" for char in value):
        return "contains a lone surrogate, which is not text"
    return None


def _check_texts(value, path: str) -> None:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise ValidationError(f"{path or 'value'} {problem}.", path or "_schema")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_texts(key, path)
            _check_texts(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            _check_texts(item, path)


class StrictSchema(Schema):
    """Unknown fields are an error, so a typo never passes silently."""

    @pre_load
    def _texts(self, data, **_):
        # Neither database stores these the same way, and PostgreSQL refuses NUL.
        _check_texts(data, "")
        return data


class QuerySchema(StrictSchema):
    """Query strings: other parameters are ignored, texts are checked."""

    class Meta:
        unknown = EXCLUDE


class Properties(fields.Dict):
    """Free context such as hotel or job id: short keys, scalar values."""

    def __init__(self, **kwargs):
        super().__init__(
            keys=fields.String(), values=fields.Raw(allow_none=True), **kwargs
        )

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if len(result) > 50:
            raise ValidationError("At most 50 properties.")
        for key, item in result.items():
            if not key or len(key) > 64:
                raise ValidationError(
                    f"Property name {key!r} must be 1 to 64 characters."
                )
            if item is not None and not isinstance(item, str | int | float | bool):
                raise ValidationError(
                    f"Property {key!r} must be a string, number, true, false or null."
                )
            if isinstance(item, str) and len(item) > 500:
                raise ValidationError(
                    f"Property {key!r} is longer than 500 characters."
                )
        return result


class AwareDateTime(fields.AwareDateTime):
    """An ISO 8601 time with its offset, kept in UTC."""

    default_error_messages = {
        "invalid": "Not an ISO 8601 time: use 2024-03-01T09:00:00+01:00.",
        "invalid_awareness": "The time needs its offset, as in 2024-03-01T09:00:00Z.",
    }

    def __init__(self, **kwargs):
        super().__init__(format="iso", default_timezone=None, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)
        except OverflowError:
            raise ValidationError(f"{value!r} is out of range.") from None


class TextByLanguage(fields.Field):
    """One text, or the same text per language: {"en": "...", "de": "..."}."""

    def __init__(self, max_length: int, allow_empty: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.allow_empty = allow_empty
        self.metadata.setdefault(
            "description",
            "A string, or an object of language tag to string such as"
            ' {"en": "...", "de": "..."}.',
        )
        text = {"type": "string", "maxLength": max_length}
        self.metadata.setdefault(
            "oneOf",
            [
                text,
                {"type": "object", "additionalProperties": text, "minProperties": 1},
            ],
        )

    def _text(self, value, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{where} must be a non-empty string.")
        if len(value) > self.max_length:
            raise ValidationError(
                f"{where} has {len(value)} characters; the limit is {self.max_length}."
            )
        return value

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            if value == "" and self.allow_empty:
                return value
            return self._text(value, "The text")
        if not value:
            raise ValidationError('Give at least one language, such as {"en": "..."}.')
        if len(value) > 50:
            raise ValidationError("At most 50 languages.")
        texts = {}
        for tag, text in value.items():
            if not isinstance(tag, str) or not LOCALE.match(tag.lower()):
                raise ValidationError(
                    f"{tag!r} is not a language tag; use one such as en or de-CH."
                )
            spelled = language_tag(tag)
            if spelled in texts:
                raise ValidationError(f"The language {spelled} is given twice.")
            texts[spelled] = self._text(text, f"The {spelled} text")
        return texts

    def _serialize(self, value, attr, obj, **kwargs):
        translations = getattr(obj, f"{attr}_translations", None)
        return dict(translations) if translations else value


def language_tag(tag: str) -> str:
    """de_ch as de-CH: the language in lower case, a region in capitals."""
    language, *rest = tag.replace("_", "-").split("-")
    parts = [language.lower()]
    for part in rest:
        parts.append(part.upper() if len(part) == 2 else part.lower())
    return "-".join(parts)


class SurveySchema(StrictSchema):
    key = fields.String(
        required=True,
        validate=validate.Regexp(
            SLUG, error="Use lowercase letters, digits and dashes, up to 64."
        ),
        metadata={"example": "post-stay-nps"},
    )
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    question = TextByLanguage(
        500, required=True, metadata={"example": {"en": "How likely...?"}}
    )
    follow_up = TextByLanguage(500, allow_empty=True, allow_none=True)
    touchpoint = fields.String(
        required=True,
        validate=validate.Regexp(SLUG, error="Use a label such as post-stay."),
    )
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    locale = fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "The language of the survey's texts; without it, the"
            " respondent's browser language decides after the contact's."
        },
        validate=validate.Regexp(
            LOCALE, error="Use a language tag such as en or de-CH."
        ),
    )
    link_ttl_days = fields.Integer(
        load_default=14, strict=True, validate=validate.Range(1, 365)
    )
    timezone = fields.String(
        allow_none=True,
        validate=validate_timezone,
        metadata={"description": "Zone of the send window when a contact has none."},
    )
    send_window_start = fields.String(
        load_default="09:00",
        validate=validate.Regexp(CLOCK, error="Use a local time such as 09:00."),
    )
    send_window_end = fields.String(
        load_default="20:00",
        validate=validate.Regexp(CLOCK, error="Use a local time such as 20:00."),
    )
    throttle_days = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(0, 3650),
        metadata={"description": "Days between two surveys; null: the global value."},
    )
    reminder_after_hours = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(1, 24 * 90)
    )
    segments = fields.List(
        fields.String(
            validate=validate.Regexp(
                PROPERTY_NAME, error=f"Property names use {PROPERTY_NAME_RULE}."
            )
        ),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={
            "description": "Properties, such as hotel, whose counts are kept hourly"
            " so scores group and filter by them fast."
        },
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates_schema
    def _window(self, data, **_):
        check_window(data.get("send_window_start"), data.get("send_window_end"))

    @validates("segments")
    def _segments(self, value, **_):
        if len(set(value)) != len(value):
            raise ValidationError("Name each property once.")


class SurveyPatchSchema(SurveySchema):
    class Meta:
        exclude = ("key",)


class ContactSchema(StrictSchema):
    external_id = fields.String(validate=validate.Length(1, 128), allow_none=True)
    name = fields.String(validate=validate.Length(max=200), allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    region = fields.String(
        load_only=True,
        allow_none=True,
        validate=validate.Regexp(r"^[A-Za-z]{2}$", error="Use a country code: DE, GB."),
        metadata={"description": "Country of a national phone number, such as DE."},
    )
    locale = fields.String(
        allow_none=True,
        validate=validate.Regexp(
            LOCALE, error="Use a language tag such as en or de-CH."
        ),
    )
    timezone = fields.String(allow_none=True)
    properties = Properties()

    @validates("email")
    def _email(self, value, **_):
        if value is not None:
            try:
                validate_email(value, check_deliverability=False, allow_smtputf8=False)
            except EmailNotValidError as error:
                raise ValidationError(str(error)) from None

    @validates("name")
    def _name(self, value, **_):
        if value is not None and any(unicodedata.category(c) == "Cc" for c in value):
            raise ValidationError(
                "A name cannot hold line breaks or control characters."
            )

    @validates("timezone")
    def _timezone(self, value, **_):
        validate_timezone(value)

    @post_load
    def normalise(self, data, **_):
        if data.get("email"):
            data["email"] = validate_email(
                data["email"], check_deliverability=False, allow_smtputf8=False
            ).normalized
        region = data.pop("region", None)
        if data.get("phone"):
            data["phone"] = normalise_phone(data["phone"], region)
        if not any(data.get(key) for key in ("external_id", "email", "phone")):
            raise ValidationError(
                "A contact needs an external_id, an email or a phone.", "contact"
            )
        return data


def normalise_phone(raw: str, region: str | None) -> str:
    """Return the number in E.164, or raise a ValidationError that says why not."""
    try:
        number = phonenumbers.parse(raw, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        if not raw.strip().startswith("+") and not region:
            raise ValidationError(
                f"{raw!r} is a national number: give it as +<country code>... or add"
                " contact.region (such as GB).",
                "phone",
            ) from None
        raise ValidationError(f"{raw!r} is not a phone number.", "phone") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{raw!r} is not a valid phone number.", "phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class ContactOutSchema(Schema):
    external_id = fields.String()
    name = fields.String()
    email = fields.String()
    phone = fields.String()
    locale = fields.String()
    timezone = fields.String()
    properties = fields.Dict()


class TriggerSchema(StrictSchema):
    survey = fields.String(required=True, metadata={"example": "post-stay-nps"})
    contact = fields.Nested(ContactSchema, required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    delay_minutes = fields.Integer(
        strict=True, validate=validate.Range(0, MAX_DELAY_MINUTES)
    )
    send_at = AwareDateTime()
    properties = Properties(load_default=dict)
    idempotency_key = fields.String(validate=validate.Length(1, 200))

    @validates("send_at")
    def _send_at(self, value, **_):
        # The same horizon as delay_minutes; further out, the link's expiry overflows.
        if value > datetime.now(UTC) + timedelta(minutes=MAX_DELAY_MINUTES):
            raise ValidationError("send_at is more than a year ahead.")

    @validates_schema
    def _one_time(self, data, **_):
        if "delay_minutes" in data and "send_at" in data:
            raise ValidationError("Give delay_minutes or send_at, not both.", "send_at")


class MessageOutSchema(Schema):
    id = fields.Integer()
    channel = fields.String()
    purpose = fields.String()
    status = fields.String()
    due_at = fields.DateTime()
    sent_at = fields.DateTime()
    attempts = fields.Integer()
    provider_id = fields.String()
    error_code = fields.String()
    last_error = fields.String()
    status_history = fields.List(fields.Dict())


class InvitationOutSchema(Schema):
    id = fields.Integer()
    survey = fields.Function(lambda invitation: invitation.survey.key)
    channel = fields.String()
    status = fields.Function(
        lambda invitation: invitation.current_status(),
        metadata={"type": "string", "enum": list(INVITATION_STATUSES)},
    )
    suppression_reason = fields.String()
    url = fields.String()
    send_at = fields.DateTime()
    expires_at = fields.DateTime()
    opened_at = fields.DateTime()
    answered_at = fields.DateTime()
    created_at = fields.DateTime()
    properties = fields.Dict()
    contact = fields.Nested(ContactOutSchema)
    messages = fields.List(fields.Nested(MessageOutSchema))


class InvitationQuerySchema(QuerySchema):
    status = fields.String(validate=validate.OneOf(INVITATION_STATUSES))
    survey = fields.String(metadata={"description": "A survey key."})
    contact = fields.String(
        metadata={"description": "The contact's external_id, email or phone (E.164)."}
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    cursor = fields.Integer(
        validate=validate.Range(1, MAX_ID),
        metadata={"description": "next_cursor of the page before."},
    )


class InvitationPageSchema(Schema):
    items = fields.List(fields.Nested(InvitationOutSchema))
    next_cursor = fields.Integer(allow_none=True)


class SuppressionSchema(StrictSchema):
    channel = fields.String(required=True, validate=validate.OneOf(("email", "sms")))
    address = fields.String(
        required=True,
        validate=validate.Length(1, 320),
        metadata={"description": "An email address, or a phone number in E.164."},
    )
    reason = fields.String(
        load_default="opted_out", validate=validate.OneOf(SUPPRESSION_KINDS)
    )
    source = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)

    @validates_schema
    def _address(self, data, **_):
        if data.get("channel") == "email":
            try:
                validate_email(data.get("address", ""), check_deliverability=False)
            except EmailNotValidError as error:
                raise ValidationError(str(error), "address") from None
        elif data.get("channel") == "sms":
            try:
                normalise_phone(data.get("address", ""), None)
            except ValidationError as error:
                problems = error.messages
                if isinstance(problems, dict):
                    problems = next(iter(problems.values()))
                raise ValidationError(problems, "address") from None


class SuppressionQuerySchema(QuerySchema):
    channel = fields.String(validate=validate.OneOf(("email", "sms")))
    address = fields.String()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    cursor = fields.Integer(validate=validate.Range(1, MAX_ID))


class SuppressionKeySchema(QuerySchema):
    channel = fields.String(required=True, validate=validate.OneOf(("email", "sms")))
    address = fields.String(required=True, validate=validate.Length(1, 320))


class SuppressionPageSchema(Schema):
    items = fields.List(fields.Nested(SuppressionSchema))
    next_cursor = fields.Integer(allow_none=True)


class KeyList(fields.List):
    """Repeat the parameter or separate values with commas: survey=a,b."""

    def __init__(self, inner=None, **kwargs):
        super().__init__(inner or fields.String(), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            value = [
                part.strip()
                for item in value
                for part in (item.split(",") if isinstance(item, str) else [item])
                if not isinstance(part, str) or part.strip()
            ]
        return super()._deserialize(value, attr, data, **kwargs)


class LocalDateOrTime(fields.Field):
    """A date, read later in the request's time zone, or a time with its offset."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Give a date (2024-03-01) or a time with offset.")
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                f"{value!r} is not a date (2024-03-01) or a time with offset"
                " (2024-03-01T09:00:00+00:00)."
            ) from None
        if parsed.tzinfo is None:
            raise ValidationError("A time needs its offset, such as +00:00 or Z.")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError(f"{value!r} is out of range.") from None


class DateOrDateTime(LocalDateOrTime):
    """A date (midnight UTC) or an ISO 8601 time with offset, as a UTC datetime."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(parsed, datetime):
            return parsed
        return datetime.combine(parsed, time(), UTC)


GROUPS = ("survey", "touchpoint", "stage", "channel")


class AnswerFilterSchema(QuerySchema):
    """Which answers: surveys, channel, period and time zone; property.NAME too."""

    survey = KeyList(
        validate=validate.Length(max=100),
        metadata={"description": "One or several survey keys."},
    )
    kind = fields.String(validate=validate.OneOf(KINDS))
    touchpoint = fields.String(validate=validate.Length(1, 64))
    stage = fields.String(validate=validate.OneOf(STAGES))
    channel = KeyList(fields.String(validate=validate.OneOf(RESPONSE_CHANNELS)))
    from_ = LocalDateOrTime(
        data_key="from", metadata={"description": "Inclusive; a date is local."}
    )
    to = LocalDateOrTime(metadata={"description": "Exclusive; a date is local."})
    tz = fields.String(
        load_default="UTC",
        metadata={"description": "IANA zone, such as Europe/Berlin."},
    )


class ScoreQuerySchema(AnswerFilterSchema):
    interval = fields.String(validate=validate.OneOf(("day", "week", "month")))
    group_by = fields.String(
        metadata={"description": "survey, touchpoint, stage, channel or property.NAME"}
    )
    limit = fields.Integer(validate=validate.Range(1, 1000))
    compare = fields.String(validate=validate.OneOf(("previous",)))
    response_rate = fields.Boolean(load_default=False)

    @validates("group_by")
    def _group_by(self, value, **_):
        if value in GROUPS:
            return
        name = value.removeprefix("property.")
        if value.startswith("property.") and PROPERTY_NAME.match(name):
            return
        raise ValidationError(
            f"Group by one of {', '.join(GROUPS)} or property.NAME, not {value!r}."
        )


class MetricSchema(Schema):
    metric = fields.String()
    n = fields.Integer()
    score = fields.Float(allow_none=True)
    mean = fields.Float(allow_none=True)
    promoters = fields.Integer()
    passives = fields.Integer()
    detractors = fields.Integer()
    satisfied = fields.Integer()
    easy = fields.Integer()
    distribution = fields.Dict(keys=fields.String(), values=fields.Integer())
    margin_of_error = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)
    low_sample = fields.Boolean()


class BucketSchema(MetricSchema):
    start = fields.DateTime(metadata={"description": "Calendar start of the bucket."})
    from_ = fields.DateTime(data_key="from", attribute="from")
    to = fields.DateTime()


class PreviousSchema(MetricSchema):
    from_ = fields.DateTime(data_key="from", attribute="from")
    to = fields.DateTime()


class ComparedSchema(MetricSchema):
    series = fields.List(fields.Nested(BucketSchema))
    previous = fields.Nested(PreviousSchema)
    delta = fields.Float(allow_none=True)
    significant = fields.Boolean(allow_none=True)


class GroupSchema(ComparedSchema):
    value = fields.Raw(allow_none=True)


class ScoreSchema(ComparedSchema):
    survey = fields.String()
    surveys = fields.List(fields.String())
    kind = fields.String()
    tz = fields.String()
    interval = fields.String()
    group_by = fields.String()
    from_ = fields.DateTime(data_key="from", attribute="from", allow_none=True)
    to = fields.DateTime(allow_none=True)
    groups = fields.List(fields.Nested(GroupSchema))
    invitations_sent = fields.Integer()
    responses = fields.Integer()
    response_rate = fields.Float(allow_none=True)


class ResponseQuerySchema(AnswerFilterSchema):
    updated_since = DateOrDateTime(
        metadata={"description": "Only answers stored or changed at or after this."}
    )
    since = DateOrDateTime(metadata={"description": "Older name of updated_since."})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    cursor = fields.String()


class ResponseOutSchema(Schema):
    id = fields.Integer()
    survey = fields.Function(lambda response: response.survey.key)
    invitation_id = fields.Integer()
    external_id = fields.Function(lambda response: response.contact.external_id)
    score = fields.Integer()
    comment = fields.String()
    channel = fields.String()
    properties = fields.Dict()
    answered_at = fields.DateTime()
    updated_at = fields.DateTime()


class ResponsePageSchema(Schema):
    items = fields.List(fields.Nested(ResponseOutSchema))
    next_cursor = fields.String(allow_none=True)


class SurveyListSchema(Schema):
    items = fields.List(fields.Nested(SurveySchema))


class ErrorBodySchema(Schema):
    code = fields.String(metadata={"example": "invalid"})
    message = fields.String(metadata={"example": "Invalid request. channel: ..."})
    details = fields.Raw(allow_none=True)


class ErrorSchema(Schema):
    """The one error shape of every API answer that is not a success."""

    error = fields.Nested(ErrorBodySchema)
