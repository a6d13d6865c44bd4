"""Benchmark: load synthetic answers, time the scores endpoint against raw SQL.

Run with `make bench` (BENCH_ARGS="--sizes 100000,1000000"). It replaces every
survey, contact, invitation and response in the configured database, so it
refuses to run on a database that holds surveys it did not make.
"""

import argparse
import io
import json
import logging
import random
import statistics
import sys
import time
from array import array
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import sqlalchemy
from sqlalchemy import select

from feedback import auth
from feedback import create_app
from feedback import score_counts
from feedback.models import Survey
from feedback.models import db

logger = logging.getLogger(__name__)

PREFIX = "bench-"
SURVEYS = (
    ("bench-stay-nps", "nps", "post-stay", "retention"),
    ("bench-viewing-nps", "nps", "post-viewing", "acquisition"),
    ("bench-interview-nps", "nps", "post-interview", "onboarding"),
    ("bench-desk-csat", "csat", "post-stay", "retention"),
    ("bench-checkin-ces", "ces", "post-stay", "activation"),
)
HOTELS = tuple(f"hotel-{number:02d}" for number in range(1, 21))
CHANNELS = ("web", "sms", "api")
CHANNEL_WEIGHTS = (70, 25, 5)
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_SECONDS = 365 * 24 * 3600
CONTACTS = 10_000
TZ = "Europe/Berlin"
# Three request shapes, as a dashboard asks them.
SHAPES = (
    ("90-day total", {"from": "2025-10-03", "to": "2026-01-01"}),
    ("weekly series", {"from": "2025-01-06", "to": "2025-12-29", "interval": "week"}),
    (
        "weekly by hotel",
        {
            "from": "2025-01-06",
            "to": "2025-12-29",
            "interval": "week",
            "group_by": "property.hotel",
        },
    ),
)
TABLES = ("score_counts", "responses", "messages", "invitations", "contacts")


def synthetic(size: int, seed: int = 7) -> dict:
    """Answers spread over a year, as compact columns: survey, hotel, time..."""
    rng = random.Random(seed)
    columns = {
        "survey": array("b"),
        "hotel": array("b"),
        "channel": array("b"),
        "score": array("b"),
        "second": array("l"),
    }
    kinds = [kind for _, kind, _, _ in SURVEYS]
    hotel_weights = [20 - index for index in range(len(HOTELS))]
    hotels = rng.choices(range(len(HOTELS)), weights=hotel_weights, k=size)
    channels = rng.choices(range(len(CHANNELS)), weights=CHANNEL_WEIGHTS, k=size)
    for index in range(size):
        survey = index % len(SURVEYS)
        kind = kinds[survey]
        if kind == "nps":
            score = min(10, max(0, round(rng.gauss(8, 2.2))))
        elif kind == "csat":
            score = min(5, max(1, round(rng.gauss(4, 1))))
        else:
            score = min(7, max(1, round(rng.gauss(5.5, 1.3))))
        columns["survey"].append(survey)
        columns["hotel"].append(hotels[index])
        columns["channel"].append(channels[index])
        columns["score"].append(score)
        columns["second"].append(rng.randrange(YEAR_SECONDS))
    return columns


def _stamp(second: int, sqlite: bool) -> str:
    moment = YEAR_START + timedelta(seconds=second)
    if sqlite:
        return moment.strftime("%Y-%m-%d %H:%M:%S.000000")
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


def _rows(data: dict, survey_ids: list[int], sqlite: bool):
    """(invitation, response) rows, in the columns both loaders write."""
    for index in range(len(data["score"])):
        row_id = index + 1
        second = data["second"][index]
        answered = _stamp(second, sqlite)
        sent = _stamp(max(0, second - 3600), sqlite)
        expires = _stamp(second + 14 * 86400, sqlite)
        survey_id = survey_ids[data["survey"][index]]
        contact_id = index % CONTACTS + 1
        properties = json.dumps({"hotel": HOTELS[data["hotel"][index]]})
        channel = CHANNELS[data["channel"][index]]
        invitation = (
            row_id,
            survey_id,
            contact_id,
            "link",
            "answered",
            properties,
            row_id.to_bytes(32, "big"),
            f"{row_id:064x}",
            sent,
            expires,
            answered,
            sent,
            answered,
        )
        response = (
            row_id,
            row_id,
            survey_id,
            contact_id,
            data["score"][index],
            channel,
            properties,
            answered,
            answered,
        )
        yield invitation, response


INVITATION_COLUMNS = (
    "id, survey_id, contact_id, channel, status, properties, token_nonce,"
    " token_hash, send_at, expires_at, answered_at, created_at, updated_at"
)
RESPONSE_COLUMNS = (
    "id, invitation_id, survey_id, contact_id, score, channel, properties,"
    " answered_at, updated_at"
)
CONTACT_COLUMNS = "id, external_id, properties, created_at, updated_at"


def _copy_text(values) -> str:
    """One line of PostgreSQL COPY text: tabs between, backslashes doubled."""
    cells = []
    for value in values:
        if isinstance(value, bytes):
            cells.append("\\\\x" + value.hex())
        else:
            cells.append(str(value).replace("\\", "\\\\"))
    return "\t".join(cells) + "\n"


def _load_postgresql(connection, data, survey_ids) -> None:
    now = _stamp(0, False)
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY contacts ({CONTACT_COLUMNS}) FROM STDIN") as copy:
            for number in range(1, CONTACTS + 1):
                copy.write(_copy_text((number, f"guest-{number}", "{}", now, now)))
        for table, columns, position in (
            ("invitations", INVITATION_COLUMNS, 0),
            ("responses", RESPONSE_COLUMNS, 1),
        ):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                buffer = io.StringIO()
                for count, rows in enumerate(_rows(data, survey_ids, False), 1):
                    buffer.write(_copy_text(rows[position]))
                    if count % 50_000 == 0:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
        for table in ("contacts", "invitations", "responses"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
    connection.commit()


def _load_sqlite(connection, data, survey_ids) -> None:
    now = _stamp(0, True)
    cursor = connection.cursor()
    cursor.execute("BEGIN")
    cursor.executemany(
        f"INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        ((n, f"guest-{n}", "{}", now, now) for n in range(1, CONTACTS + 1)),
    )
    batch_invitations, batch_responses = [], []
    invitation_sql = f"INSERT INTO invitations ({INVITATION_COLUMNS}) VALUES " + (
        "(" + ", ".join("?" * 13) + ")"
    )
    response_sql = f"INSERT INTO responses ({RESPONSE_COLUMNS}) VALUES " + (
        "(" + ", ".join("?" * 9) + ")"
    )
    for invitation, response in _rows(data, survey_ids, True):
        batch_invitations.append(invitation)
        batch_responses.append(response)
        if len(batch_responses) == 50_000:
            cursor.executemany(invitation_sql, batch_invitations)
            cursor.executemany(response_sql, batch_responses)
            batch_invitations, batch_responses = [], []
    cursor.executemany(invitation_sql, batch_invitations)
    cursor.executemany(response_sql, batch_responses)
    cursor.execute("COMMIT")
    cursor.close()


def _check_replaceable() -> None:
    keys = db.session.scalars(select(Survey.key)).all()
    foreign = [key for key in keys if not key.startswith(PREFIX)]
    if foreign:
        sys.exit(
            "bench: this database holds surveys the benchmark did not make"
            f" ({', '.join(foreign[:3])}...); point FEEDBACK_DATABASE_URL at a"
            " scratch database."
        )


def _empty() -> None:
    if db.engine.dialect.name == "postgresql":
        db.session.execute(
            sqlalchemy.text(
                f"TRUNCATE {', '.join(TABLES)}, surveys, api_keys RESTART IDENTITY"
                " CASCADE"
            )
        )
    else:
        for table in (*TABLES, "surveys", "api_keys"):
            db.session.execute(sqlalchemy.text(f"DELETE FROM {table}"))
    db.session.commit()


def load(size: int) -> tuple[str, float]:
    """Replace the data with `size` synthetic answers; return an API key, seconds."""
    started = time.perf_counter()
    _check_replaceable()
    _empty()
    surveys = [
        Survey(
            key=key,
            kind=kind,
            question="How did we do?",
            touchpoint=touchpoint,
            stage=stage,
            segments=["hotel"],
        )
        for key, kind, touchpoint, stage in SURVEYS
    ]
    db.session.add_all(surveys)
    db.session.commit()
    survey_ids = [survey.id for survey in surveys]
    # Reading the ids began a transaction; on SQLite it holds the write lock.
    db.session.commit()
    data = synthetic(size)

    raw = db.engine.raw_connection()
    try:
        if db.engine.dialect.name == "postgresql":
            _load_postgresql(raw.driver_connection, data, survey_ids)
        else:
            _load_sqlite(raw.driver_connection, data, survey_ids)
    finally:
        raw.close()

    # The hourly counts, from the responses just loaded, as a change of segments
    # would recount them.
    for survey in surveys:
        score_counts.rebuild(survey)
    db.session.commit()
    with db.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    key = auth.create_key("bench")
    return key, time.perf_counter() - started


def raw_query(dialect: str, shape: dict, survey_id: int):
    """The best single SQL over the responses table for a shape, and its params."""
    from zoneinfo import ZoneInfo

    from feedback import periods

    tz = ZoneInfo(TZ)
    start = periods.local_midnight(datetime.fromisoformat(shape["from"]).date(), tz)
    end = periods.local_midnight(datetime.fromisoformat(shape["to"]).date(), tz)
    params = {"survey": survey_id, "start": start, "end": end}
    where = "survey_id = :survey AND answered_at >= :start AND answered_at < :end"
    if dialect == "sqlite":
        params["start"] = start.strftime("%Y-%m-%d %H:%M:%S.%f")
        params["end"] = end.strftime("%Y-%m-%d %H:%M:%S.%f")
    group = ""
    if shape.get("group_by"):
        group = (
            "properties ->> 'hotel'"
            if dialect == "postgresql"
            else "json_extract(properties, '$.hotel')"
        )
    if not shape.get("interval"):
        return (
            f"SELECT score, count(*) FROM responses WHERE {where} GROUP BY score",
            params,
        )
    if dialect == "postgresql":
        bucket = f"date_trunc('week', answered_at, '{TZ}')"
    else:
        # SQLite knows no time zones: weeks from the local-midnight edges.
        series = periods.buckets(start, end, "week", tz)
        cases = []
        for index, piece in enumerate(series):
            name = f"edge{index}"
            params[name] = piece.end.strftime("%Y-%m-%d %H:%M:%S.%f")
            cases.append(f"WHEN answered_at < :{name} THEN {index}")
        bucket = "CASE " + " ".join(cases) + " END"
    columns = ", ".join(part for part in (bucket, group) if part)
    count = len([part for part in (bucket, group) if part])
    positions = ", ".join(str(n) for n in range(1, count + 2))
    return (
        f"SELECT {columns}, score, count(*) FROM responses WHERE {where}"
        f" GROUP BY {positions}",
        params,
    )


def medians_ms(first, second, repeat: int) -> tuple[float, float]:
    """Median milliseconds of two runs, taken in turn so both see the same machine."""
    first()
    second()
    timings = ([], [])
    for _ in range(repeat):
        for run, spent in ((first, timings[0]), (second, timings[1])):
            started = time.perf_counter()
            run()
            spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[0]), statistics.median(timings[1])


def measure(app, key: str, repeat: int) -> list[tuple[str, float, float]]:
    """Median milliseconds per shape; each request and query in its own context."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    with app.app_context():
        survey_id = db.session.scalar(
            select(Survey.id).where(Survey.key == SURVEYS[0][0])
        )
        dialect = db.engine.dialect.name
    results = []
    for name, shape in SHAPES:
        query = {"survey": SURVEYS[0][0], "tz": TZ, **shape}

        bodies, results_of_raw = [], []

        def endpoint(query=query, bodies=bodies):
            response = client.get("/api/v1/scores", query_string=query, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            bodies.append(response.get_data())

        sql, params = raw_query(dialect, shape, survey_id)
        statement = sqlalchemy.text(sql)

        def raw(statement=statement, params=params, found=results_of_raw):
            with app.app_context():
                found.append(db.session.execute(statement, params).fetchall())

        results.append((name, *medians_ms(endpoint, raw, repeat)))
        # Checked after the timing, so reading the answers costs neither side.
        answers = {json.loads(body)["n"] for body in bodies}
        answers |= {sum(row[-1] for row in rows) for rows in results_of_raw}
        if len(answers) != 1:
            sys.exit(f"bench: {name}: the endpoint and raw SQL disagree on n")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="Comma-separated numbers of responses (default: 100000,1000000).",
    )
    parser.add_argument("--repeat", type=int, default=21, help="Timed runs per figure.")
    args = parser.parse_args(argv)
    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",")]

    app = create_app()
    logging.getLogger("feedback").setLevel(logging.WARNING)
    lines = []
    for size in sizes:
        with app.app_context():
            dialect = db.engine.dialect.name
            key, seconds = load(size)
        print(f"loaded {size:,} responses into {dialect} in {seconds:.0f} s")
        for name, endpoint, raw in measure(app, key, args.repeat):
            lines.append((dialect, size, name, endpoint, raw))
            print(
                f"  {name:<16} endpoint {endpoint:9.1f} ms   raw SQL"
                f" {raw:9.1f} ms   ratio {endpoint / raw:6.2f}",
                flush=True,
            )

    print()
    print(
        "| database | responses | shape | endpoint ms | raw SQL ms | endpoint / raw |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for dialect, size, name, endpoint, raw in lines:
        print(
            f"| {dialect} | {size:,} | {name} | {endpoint:.1f} | {raw:.1f} |"
            f" {endpoint / raw:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
