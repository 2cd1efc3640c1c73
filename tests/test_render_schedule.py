import pytest

from chutes.render.schedule import describe_schedule


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 2 * * *", "every day at 02:00 UTC"),
        ("*/15 * * * *", "every 15 minutes"),
        ("0 */6 * * *", "at minute 0 past every 6th hour"),
        ("0 */1 * * *", "at minute 0 past every hour"),
        ("0 */2 * * *", "at minute 0 past every 2nd hour"),
        ("* * * * *", "every minute"),
        ("30 * * * *", "every hour at minute 30"),
        ("0,30 * * * *", "every hour at minutes 0 and 30"),
        ("0 9 * * 1-5", "Monday through Friday at 09:00 UTC"),
        ("0 9 * * MON", "every Monday at 09:00 UTC"),
        ("0 9 * * 1,5", "every Monday and Friday at 09:00 UTC"),
        ("5 4 * * 0", "every Sunday at 04:05 UTC"),
        ("5 4 * * 7", "every Sunday at 04:05 UTC"),
        ("0 0 1 * *", "on day 1 of every month at 00:00 UTC"),
        ("0 0 1,15 * *", "on days 1 and 15 of every month at 00:00 UTC"),
        ("0 0 1 1 *", "on day 1 of January at 00:00 UTC"),
        ("0 0,12 * * *", "every day at 00:00 and 12:00 UTC"),
        ("*/5 * * * 1-5", "every 5 minutes, Monday through Friday"),
        ("*/5 * * * 6", "every 5 minutes on Saturday"),
        ("0 9-17 * * *", "every hour from 09:00 through 17:00 UTC"),
        ("*/10 9 * * *", "every 10 minutes from 09:00 through 09:59 UTC"),
        ("0 2 * JAN *", "every day at 02:00 UTC in January"),
        ("@yearly", "on day 1 of January at 00:00 UTC"),
        ("@monthly", "on day 1 of every month at 00:00 UTC"),
        ("@weekly", "every Sunday at 00:00 UTC"),
        ("@daily", "every day at 00:00 UTC"),
        ("@hourly", "every hour at minute 0"),
    ],
)
def test_describe_schedule(expression: str, words: str) -> None:
    assert describe_schedule(expression) == words


@pytest.mark.parametrize("expression", ["0 0 1 * 1", "1-5 * * * *", "0 0 * */2 *", "0 0 * *", "0-30/5 * * * *"])
def test_unusual_expressions_fall_back_to_the_expression(expression: str) -> None:
    assert describe_schedule(expression) == f"on the cron schedule `{expression}` (UTC)"


def test_timezone_is_named() -> None:
    assert describe_schedule("0 2 * * *", "Europe/Paris") == "every day at 02:00 Europe/Paris"
