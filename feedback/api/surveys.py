"""Surveys: what is asked, of which kind, at which touchpoint."""

from flask.views import MethodView
from marshmallow import ValidationError
from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from feedback import i18n
from feedback import score_counts
from feedback.api.blueprint import Blueprint
from feedback.api.schemas import SLUG
from feedback.api.schemas import SurveyListSchema
from feedback.api.schemas import SurveyPatchSchema
from feedback.api.schemas import SurveySchema
from feedback.api.schemas import check_window
from feedback.errors import ApiError
from feedback.models import Response
from feedback.models import Survey
from feedback.models import db

blp = Blueprint("surveys", __name__, description="Surveys and their questions")

TEXT_FIELDS = ("question", "follow_up")


def get_survey(key: str) -> Survey:
    survey = None
    if SLUG.match(key):
        survey = db.session.scalar(select(Survey).where(Survey.key == key))
    if survey is None:
        raise ApiError(404, f"There is no survey with key {key!r}.")
    return survey


def apply(survey: Survey, data: dict) -> None:
    """Set the given fields; a text given per language also sets the plain one."""
    texts = {name: data.pop(name) for name in TEXT_FIELDS if name in data}
    for name, value in data.items():
        setattr(survey, name, value)
    for name, value in texts.items():
        i18n.store_text(survey, name, value)
    if "locale" in data:
        i18n.refresh_default_texts(survey)


@blp.route("/surveys")
class Surveys(MethodView):
    @blp.response(200, SurveyListSchema)
    def get(self):
        """List the surveys."""
        return {"items": db.session.scalars(select(Survey).order_by(Survey.key)).all()}

    @blp.arguments(SurveySchema)
    @blp.response(201, SurveySchema)
    def post(self, data):
        """Create a survey."""
        survey = Survey()
        apply(survey, data)
        db.session.add(survey)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise ApiError(
                409,
                f"A survey with key {data['key']!r} exists already.",
                {"key": ["Already taken."]},
            ) from None
        return survey


@blp.route("/surveys/<key>")
class SurveyItem(MethodView):
    @blp.response(200, SurveySchema)
    def get(self, key):
        """Show one survey."""
        return get_survey(key)

    @blp.arguments(SurveyPatchSchema(partial=True))
    @blp.response(200, SurveySchema)
    def patch(self, data, key):
        """Change a survey; its kind only while it has no responses."""
        survey = get_survey(key)
        if "segments" in data and data["segments"] != survey.segments:
            # Answers being stored wait for this lock, so the recount misses none.
            survey = db.session.scalar(
                select(Survey)
                .where(Survey.id == survey.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        if "kind" in data and data["kind"] != survey.kind:
            answered = db.session.scalar(
                select(exists().where(Response.survey_id == survey.id))
            )
            if answered:
                raise ApiError(
                    409,
                    "The kind of a survey with responses cannot change: their scores"
                    " would mean something else. Create a new survey instead.",
                    {"kind": ["Survey has responses."]},
                )
        start = data.get("send_window_start", survey.send_window_start)
        end = data.get("send_window_end", survey.send_window_end)
        try:
            check_window(start, end)
        except ValidationError as error:
            raise ApiError(
                422, error.messages[0], {error.field_name: error.messages}
            ) from None
        declared = list(survey.segments or [])
        apply(survey, data)
        added = [name for name in survey.segments or [] if name not in declared]
        if added:
            db.session.flush()
            score_counts.recount_segments(survey, added)
        db.session.commit()
        return survey
