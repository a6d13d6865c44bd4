"""The survey page fits one round trip and asks for nothing but its own style sheet."""

import gzip
import hashlib
import os
import random
import re

import pytest

from feedback import assets
from feedback import i18n
from tests.conftest import csrf_from
from tests.conftest import new_invitation
from tests.conftest import page_path

# A new TCP connection starts with ten segments of 1,460 bytes (RFC 6928), about
# 14 KB: what fits there arrives in the first round trip.
BUDGET = 14 * 1024
LATIN = "abcdefghijklmnopqrstuvwxyzäéèàçñü"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"


def words(letters: str, length: int, seed: int) -> str:
    """Text that compresses like prose at worst: random letters in short words."""
    chooser = random.Random(seed)
    text = ""
    while len(text) < length:
        text += "".join(chooser.choices(letters, k=chooser.randint(2, 9))) + " "
    return text[:length]


def compressed(body: bytes) -> int:
    return len(gzip.compress(body, compresslevel=6, mtime=0))


def stylesheet(client, page: str) -> tuple[str, bytes]:
    (href,) = re.findall(r'<link rel="stylesheet" href="([^"]+)">', page)
    with client.get(href) as response:
        assert response.status_code == 200
        return href, response.data


def cache_control(client, href: str) -> str:
    with client.get(href) as response:
        return response.headers["Cache-Control"]


@pytest.mark.parametrize("language", i18n.LANGUAGES)
@pytest.mark.parametrize("kind", ["nps", "csat", "ces"])
def test_the_page_and_its_css_fit_in_14_kb_compressed(
    make_app, api, survey_data, language, kind
):
    app = make_app()
    client = app.test_client()
    letters = ARABIC if language == "ar" else LATIN
    # The longest question and follow-up a survey may have, in the page's language.
    survey = {
        **survey_data,
        "kind": kind,
        "question": {language: words(letters, 500, 1)},
        "follow_up": {language: words(letters, 500, 2)},
    }
    path = page_path(new_invitation(api, survey)) + f"?lang={language}"
    form = client.get(path)
    # The heaviest page: the form again with both errors and the longest comment.
    comment = words(letters, 2001, 3)
    heavy = client.post(
        path, data={"csrf_token": csrf_from(form.text), "comment": comment}
    )
    assert heavy.status_code == 400

    _, css = stylesheet(client, heavy.text)
    total = compressed(heavy.data) + compressed(css)

    assert total <= BUDGET, f"{total} bytes compressed"


def test_the_page_needs_no_script_font_image_or_other_host(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))
    page = client.get(path)
    _, css = stylesheet(client, page.text)

    assert "<script" not in page.text
    assert "<img" not in page.text and "<svg" not in page.text
    assert " on" not in re.sub(r'"[^"]*"', "", page.text).replace(" one", "")
    # Every URL on the page is relative to this host, but the empty icon, which
    # keeps browsers from asking for /favicon.ico.
    urls = re.findall(r'(?:href|src|action)="([^"]*)"', page.text)
    assert 'rel="icon" href="data:,"' in page.text
    assert urls and all(url.startswith("/") for url in urls if url != "data:,")
    assert b"@font-face" not in css and b"url(" not in css and b"@import" not in css
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_the_personal_page_is_never_stored(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))

    assert client.get(path).headers["Cache-Control"] == "no-store"
    assert client.get("/s/" + "C" * 22).headers["Cache-Control"] == "no-store"


def test_the_style_sheet_is_kept_for_a_year_under_its_version(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))
    href, css = stylesheet(client, client.get(path).text)

    with client.get(href) as cached:
        assert cached.headers["Cache-Control"] == (
            "public, max-age=31536000, immutable"
        )
        assert cached.headers["Content-Type"].startswith("text/css")

    # The version is the content's own hash, so a changed file gets a new URL.
    assert href.endswith("?v=" + hashlib.sha256(css).hexdigest()[:12])
    plain = href.split("?")[0]
    assert cache_control(client, plain + "?v=000000000000") == "no-cache"
    assert cache_control(client, plain) == "no-cache"


def test_a_changed_style_sheet_gets_a_new_url(make_app, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "survey.css").write_text("a{color:#000}")
    app = make_app()
    app.static_folder = str(static)

    with app.test_request_context():
        first = assets.asset_url("survey.css")
        (static / "survey.css").write_text("a{color:#111}")
        os.utime(static / "survey.css", ns=(1, 1))
        second = assets.asset_url("survey.css")

    assert first != second


def test_a_browser_holding_the_style_sheet_gets_304(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))
    href, css = stylesheet(client, client.get(path).text)
    tag = hashlib.sha256(css).hexdigest()[:12]

    again = client.get(href, headers={"If-None-Match": f'"{tag}"'})

    assert again.status_code == 304
    assert again.data == b""
    assert client.get(href, headers={"If-None-Match": '"other"'}).data == css


@pytest.mark.parametrize(
    "path",
    ["/static/missing.css", "/static/../pyproject.toml", "/static/%2e%2e/app.py"],
)
def test_only_files_in_the_static_folder_are_served(client, path):
    answer = client.get(path)

    assert answer.status_code == 404
    assert b"[project]" not in answer.data and b"create_app" not in answer.data
