"""Scores: NPS, CSAT and CES by period, bucket and segment, with margins of error."""

from flask import current_app
from flask import jsonify
from flask import request
from flask.views import MethodView

from feedback import periods
from feedback import properties
from feedback import scores
from feedback.api.blueprint import Blueprint
from feedback.api.schemas import ScoreQuerySchema
from feedback.api.schemas import ScoreSchema
from feedback.errors import ApiError

blp = Blueprint("scores", __name__, description="Score aggregation")

MAX_PROPERTY_VALUES = 100
OUT_OF_RANGE = "That period reaches past the years a date can hold, 1 to 9999."


def property_filters(args) -> dict[str, list[str]]:
    """property.NAME=value parameters, several values each allowed."""
    filters = {}
    for key in args:
        if not key.startswith(scores.PROPERTY_PREFIX):
            continue
        name = key.removeprefix(scores.PROPERTY_PREFIX)
        if not properties.NAME.match(name):
            raise ApiError(
                422,
                f"{key!r} is not a property filter: property names use"
                f" {properties.NAME_RULE}.",
                {key: ["Not a property name."]},
            )
        values = args.getlist(key)
        if len(values) > MAX_PROPERTY_VALUES:
            raise ApiError(
                422,
                f"At most {MAX_PROPERTY_VALUES} values for {key}.",
                {key: ["Too many values."]},
            )
        filters[name] = values
    return filters


def selection_range(query: dict, needs_range: bool = False) -> tuple:
    """The zone and the UTC instants of from and to; 4xx for what does not fit."""
    try:
        tz = periods.zone(query["tz"])
    except ValueError as error:
        raise ApiError(422, str(error), {"tz": [str(error)]}) from None
    try:
        start = periods.instant(query["from_"], tz) if query.get("from_") else None
        end = periods.instant(query["to"], tz) if query.get("to") else None
    except OverflowError:
        raise ApiError(422, OUT_OF_RANGE, {"from": [OUT_OF_RANGE]}) from None
    if start is not None and end is not None and start >= end:
        raise ApiError(
            422,
            "Invalid request. to: from must be before to.",
            {"to": ["from must be before to."]},
        )
    if needs_range and (start is None or end is None):
        raise ApiError(
            422,
            "A series and a comparison need both from and to.",
            {"from": ["Required with interval or compare."]},
        )
    return tz, start, end


def selection_from(query: dict, needs_range: bool = False) -> scores.Selection:
    """Read the common filters into a Selection; 4xx for what does not fit."""
    tz, start, end = selection_range(query, needs_range)
    # The answer shows both in the zone, where 9999-12-31T23:00Z is in year 10000.
    for name, moment in (("from", start), ("to", end)):
        try:
            _local(moment, tz)
        except OverflowError:
            raise ApiError(422, OUT_OF_RANGE, {name: [OUT_OF_RANGE]}) from None

    kind, surveys = scores.choose_surveys(
        query.get("survey"),
        query.get("kind"),
        query.get("touchpoint"),
        query.get("stage"),
    )
    return scores.Selection(
        kind=kind,
        surveys=surveys,
        tz=tz,
        start=start,
        end=end,
        channels=query.get("channel") or [],
        filters=property_filters(request.args),
    )


@blp.route("/scores")
class Scores(MethodView):
    @blp.arguments(ScoreQuerySchema, location="query")
    @blp.response(200, ScoreSchema)
    def get(self, query):
        """Score over [from, to), with series, groups and comparison if asked."""
        needs_range = bool(query.get("interval") or query.get("compare"))
        selection = selection_from(query, needs_range)
        selection.interval = query.get("interval")
        selection.group_by = query.get("group_by")
        selection.limit = query.get("limit")
        selection.compare = query.get("compare") == "previous"
        if query["response_rate"] and selection.channels:
            raise ApiError(
                422,
                "The response rate counts invitations, which have no answer channel;"
                " leave out channel to get it.",
                {"response_rate": ["Not with channel."]},
            )

        try:
            figures = scores.aggregate(selection, current_app.config["LOW_SAMPLE"])
        except ValueError as error:
            raise ApiError(422, str(error), {"interval": [str(error)]}) from None
        except OverflowError:
            raise ApiError(422, OUT_OF_RANGE, {"from": [OUT_OF_RANGE]}) from None
        result = {}
        if len(selection.surveys) == 1:
            result["survey"] = selection.surveys[0].key
        result.update(
            surveys=[survey.key for survey in selection.surveys],
            kind=selection.kind,
            tz=query["tz"],
            **{"from": _local(selection.start, selection.tz)},
            to=_local(selection.end, selection.tz),
            interval=selection.interval,
            group_by=selection.group_by,
            **figures,
        )
        if query["response_rate"]:
            result.update(scores.response_rate(selection))
        # Already plain JSON values: a schema pass over every bucket would cost more
        # than the query; the schema documents the shape.
        return jsonify(result)


def _local(moment, tz):
    return None if moment is None else moment.astimezone(tz).isoformat()
