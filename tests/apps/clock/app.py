"""A test-only app: one function on a rate schedule, to show the local cloud fires ``@app.schedule``."""

from datetime import datetime

from chalice import Chalice

app = Chalice(app_name="amci-test-clock", configure_logs=False)
FIRED: list[datetime] = []  # the scheduled time of each call, for the test to read


@app.schedule("rate(1 minute)")
def every_minute(event):
    FIRED.append(datetime.fromisoformat(event.time.replace("Z", "+00:00")))
