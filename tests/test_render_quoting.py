import json

import pytest

from chutes.render.quoting import (
    RenderError,
    check_line,
    docker_json,
    docker_word,
    markdown_cell,
    markdown_line,
    shell_join,
)


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("plain", "plain"),
        ("/usr/local/bin:/usr/bin", "/usr/local/bin:/usr/bin"),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("$(id) and ${HOME}", '"\\$(id) and \\${HOME}"'),
        ("`id`", '"`id`"'),
        ("ends with \\", '"ends with "\\\\""'),
        ("a\\b", '"a"\\\\"b"'),
        ("", '""'),
    ],
)
def test_docker_word_quotes_what_needs_it(value: str, rendered: str) -> None:
    assert docker_word(value) == rendered


@pytest.mark.parametrize(
    "value",
    [
        "a\nRUN rm -rf /",
        "a\rb",
        "a\0b",
        "a\u2028RUN x",
        "a\u2029b",
        "a\x85b",
        "a\x0bb",
        "a\x0cb",
        "a\x1b[2Jb",
        "a\x1cb",
    ],
)
def test_line_breaks_and_control_characters_are_rejected(value: str) -> None:
    with pytest.raises(RenderError, match="must be a single line without control characters"):
        docker_word(value, "environment variable X")
    with pytest.raises(RenderError, match="^serve target must be a single line"):
        docker_json(["python", value], "serve target")
    with pytest.raises(ValueError, match="single line"):
        shell_join([value])


def test_tabs_and_long_values_are_kept() -> None:
    assert docker_word("a\tb") == '"a\tb"'
    assert docker_word("x" * 100_000) == "x" * 100_000


def test_check_line_rejects_non_strings() -> None:
    with pytest.raises(RenderError, match="path must be a string, got int 3"):
        check_line(3, "path")  # type: ignore[arg-type]


def test_docker_json_is_exec_form_json() -> None:
    rendered = docker_json(["python", "-c", 'print("$(id)")', "a b"])
    assert rendered == '["python", "-c", "print(\\"$(id)\\")", "a b"]'
    assert json.loads(rendered) == ["python", "-c", 'print("$(id)")', "a b"]
    with pytest.raises(RenderError, match="must not be empty"):
        docker_json([])


def test_shell_join_quotes_each_argument() -> None:
    assert shell_join(["numpy>=1.26", "uvicorn[standard]", "torch"]) == "'numpy>=1.26' 'uvicorn[standard]' torch"


def test_markdown_cell_escapes_pipes_and_line_breaks() -> None:
    assert markdown_cell("a | b\n\nnext  line ") == "a \\| b<br>next  line"


def test_markdown_cell_shows_html_as_text_outside_code_spans() -> None:
    assert markdown_cell("<b>x</b> & `<b>|</b>` ``a`<i>`` <i>") == (
        "&lt;b&gt;x&lt;/b&gt; &amp; `<b>\\|</b>` ``a`<i>`` &lt;i&gt;"
    )
    assert markdown_cell("it`s <b>") == "it`s &lt;b&gt;"
    assert markdown_line("Title\n# more\u2028<h1>") == "Title # more &lt;h1&gt;"
