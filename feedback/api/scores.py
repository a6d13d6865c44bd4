"""Scores: NPS, CSAT and CES over a period, straight from SQL."""

from flask.views import MethodView

from feedback import scores
from feedback.api.blueprint import Blueprint
from feedback.api.schemas import ScoreQuerySchema
from feedback.api.schemas import ScoreSchema
from feedback.api.surveys import get_survey

blp = Blueprint("scores", __name__, description="Score aggregation")


@blp.route("/scores")
class Scores(MethodView):
    @blp.arguments(ScoreQuerySchema, location="query")
    @blp.response(200, ScoreSchema)
    def get(self, query):
        """A survey's score over [from, to), with n and the distribution."""
        survey = get_survey(query["survey"])
        return scores.survey_score(survey, query.get("from_"), query.get("to"))
